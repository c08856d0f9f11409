// The Try page: pick a finished run, then drop, paste or choose a picture, or take one with the webcam, and see
// what the model says (the top classes as bars), with the threshold under which it answers "not sure".
import { api, qs } from './api.js';
import { el } from './dom.js';
import { finishedRuns, noRuns, runSelect } from './runs.js';

let cleanup = () => {};

export function leave() {
  cleanup();
}

export async function render(root, studio) {
  root.append(el('h1', { text: 'Try' }));
  const runs = await finishedRuns().catch((e) => (studio.fail(e), []));
  if (!runs.length) return noRuns(root, studio, 'Trying it');
  const pick = runSelect(runs, 'try-run');
  const threshold = el('input', { type: 'number', id: 'try-threshold', min: '0', max: '1', step: '0.05', placeholder: 'the model’s own' });
  const files = el('input', { type: 'file', id: 'try-files', accept: 'image/*', multiple: true });
  const results = el('div', { id: 'try-results', 'aria-live': 'polite' });
  const info = el('p', { class: 'muted', id: 'try-info' });
  const video = el('video', { autoplay: true, muted: true, playsinline: true, hidden: true, 'aria-label': 'Webcam picture' });
  const camButton = el('button', { type: 'button', id: 'try-camera', text: 'Use the webcam' });
  const snapButton = el('button', { type: 'button', id: 'try-snap', text: 'Take a picture', hidden: true });
  const drop = el('div', { class: 'dropzone', id: 'try-drop', tabindex: '0', text: 'Drop pictures here, paste one (Ctrl+V), or choose files:' }, el('div', { class: 'row' }, files));

  root.append(
    el(
      'section',
      { class: 'card' },
      el('label', { for: 'try-run', text: 'Model' }),
      pick,
      info,
      el('label', { for: 'try-threshold', text: 'Threshold: below this confidence the answer is "not sure" (0 to 1; empty: the one chosen in training)' }),
      threshold,
    ),
    el('section', { class: 'card' }, drop, el('div', { class: 'row' }, camButton, snapButton), video),
    el('section', { class: 'card' }, el('h2', { text: 'Answers' }), results),
  );

  const loadCard = async () => {
    info.textContent = 'Loading the model…';
    try {
      const r = await api(`/api/try/model?${qs({ run: pick.value })}`);
      const c = r.card;
      info.textContent = `${c.classes} classes: ${c.labels.join(', ')}. ${c.threshold ? `Its threshold: ${c.threshold.value.toFixed(2)}.` : ''}`;
    } catch (e) {
      info.textContent = e.message;
    }
  };
  pick.addEventListener('change', loadCard);
  loadCard();

  const classify = async (blob, name) => {
    const url = URL.createObjectURL(blob);
    const row = el('div', { class: 'result' }, el('img', { src: url, alt: name }), el('div', { class: 'muted', text: `${name}: asking the model…` }));
    results.prepend(row);
    try {
      const r = await api(`/api/try?${qs({ run: pick.value, threshold: threshold.value })}`, { method: 'POST', body: blob, headers: { 'content-type': blob.type && blob.type.startsWith('image/') ? blob.type : 'application/octet-stream' } });
      const best = r.top[0];
      row.dataset.label = r.unknown ? 'not sure' : best.label;
      row.lastChild.replaceWith(
        el(
          'div',
          {},
          el('div', { class: 'label', text: r.unknown ? `Not sure (best guess: ${best.label})` : best.label }),
          el('ul', { class: 'bars' }, r.top.map((t) => {
            const bar = el('span');
            bar.style.width = `${(100 * t.probability).toFixed(1)}%`;
            return el('li', {}, el('span', { text: t.label }), el('div', { class: 'bar' }, bar), el('span', { text: `${(100 * t.probability).toFixed(1)}%` }));
          })),
          el('div', { class: 'muted', text: `${name} · ${r.ms.toFixed(0)} ms` }),
        ),
      );
    } catch (e) {
      row.dataset.label = 'failed';
      row.lastChild.replaceWith(el('div', { class: 'error', text: `${name}: ${e.message}` }));
    }
  };

  files.addEventListener('change', async () => {
    for (const f of files.files) await classify(f, f.name);
    files.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    for (const f of e.dataTransfer.files) await classify(f, f.name);
  });
  const onPaste = async (e) => {
    for (const f of e.clipboardData?.files || []) if (f.type.startsWith('image/')) await classify(f, 'pasted picture');
  };
  document.addEventListener('paste', onPaste);

  let stream = null;
  camButton.addEventListener('click', async () => {
    if (stream) {
      for (const t of stream.getTracks()) t.stop();
      stream = null;
      video.hidden = snapButton.hidden = true;
      camButton.textContent = 'Use the webcam';
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (e) {
      return studio.say(`The webcam could not be opened (${e.message || e.name})`, true);
    }
    video.srcObject = stream;
    video.hidden = snapButton.hidden = false;
    camButton.textContent = 'Stop the webcam';
    snapButton.focus();
  });
  snapButton.addEventListener('click', () => {
    if (!video.videoWidth) return studio.say('the webcam has no picture yet', true);
    const c = document.createElement('canvas');
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    c.getContext('2d').drawImage(video, 0, 0);
    c.toBlob((b) => b && classify(b, `webcam ${new Date().toLocaleTimeString()}`), 'image/jpeg', 0.92);
  });
  cleanup = () => {
    document.removeEventListener('paste', onPaste);
    for (const t of stream?.getTracks() ?? []) t.stop();
  };
}
