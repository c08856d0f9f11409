// The Train page: choose how to train (with plain-word hints and a time estimate), Start, then watch it live:
// reading the photos (count, speed, time left), then the loss and accuracy curves as each epoch ends, Cancel.
// Training runs in the studio (not in this page): reloading or closing the page loses nothing, and coming back
// shows the whole run again (the server replays its events). A run stopped by a closed studio offers Resume.
import { api, qs } from './api.js';
import { el, plural } from './dom.js';
import { drawChart } from './curves.js';

const pct = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(v > 0.999 || v < 0.001 ? 0 : 1)}%`);
const mb = (b) => (b >= 1e6 ? `${(b / 1e6).toFixed(b >= 1e8 ? 0 : 1)} MB` : `${Math.max(1, Math.round(b / 1e3))} kB`);
const secs = (s) => (s === null || s === undefined || !Number.isFinite(s) ? '' : s < 60 ? `${Math.max(1, Math.round(s))} s` : `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`);
const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const MODE_WORDS = { transfer: 'Quick (transfer)', finetune: 'Thorough (fine-tune)' };
const STATUS_WORDS = { running: 'training…', done: 'finished', failed: 'failed', cancelled: 'cancelled', stopped: 'stopped (the studio was closed)' };

export function ensureCss(name) {
  if (document.querySelector(`link[data-css="${name}"]`)) return;
  document.head.append(el('link', { rel: 'stylesheet', href: `/studio/${name}`, dataset: { css: name } }));
}

/** What the events of a run say so far (folded one event at a time). */
export function emptyView() {
  return { stage: 'Starting…', extract: null, batch: null, epochs: [], marks: [], outcome: null, test: null, val: null, error: null, logs: [], lastEventAt: 0 };
}

export function foldEvent(v, e) {
  switch (e.type) {
    case 'run-start':
      v.stage = e.resumed ? 'Resuming where it stopped…' : 'Checking the photos…';
      v.outcome = null;
      break;
    case 'stage':
      if (e.state === 'start' && e.stage === 'features' && v.epochs.length) v.stage = 'Testing on the held-back photos…';
      else if (e.state === 'start') v.stage = { data: 'Checking the photos…', backbone: 'Loading the ready-made model…', features: 'Reading the photos…', head: 'Learning your classes…', network: 'Fine-tuning the model on your photos…', calibration: 'Checking how sure the model should be…', evaluation: 'Testing on the held-back photos…', report: 'Writing the results…' }[e.stage] || v.stage;
      break;
    case 'extract':
      v.extract = e;
      v.stage = v.epochs.length ? 'Testing on the held-back photos…' : 'Reading the photos…';
      break;
    case 'batch':
      v.batch = e;
      break;
    case 'epoch': {
      // a resumed run repeats epochs it had already done (its history, or a re-run first stage): replace them
      const phase = e.phase;
      const row = { phase, epochs: e.epochs, ...e.log };
      const at = v.epochs.findIndex((p) => p.phase === phase && p.epoch === e.log.epoch);
      if (at >= 0) v.epochs[at] = row;
      else {
        v.epochs.push(row);
        v.epochs.sort((a, b) => (a.phase === b.phase ? a.epoch - b.epoch : a.phase === 'head' ? -1 : 1));
      }
      const first = v.epochs.findIndex((p) => p.phase === 'network');
      v.marks = first > 0 ? [{ at: first, text: 'fine-tuning starts' }] : [];
      v.stage = phase === 'network' ? 'Fine-tuning the model on your photos…' : 'Learning your classes…';
      v.batch = null;
      break;
    }
    case 'evaluation':
      v[e.split] = e;
      break;
    case 'log':
      v.logs.push(e);
      if (v.logs.length > 200) v.logs.shift();
      break;
    case 'done':
      v.outcome = 'done';
      v.stage = 'Finished';
      v.testAccuracy = e.testAccuracy;
      break;
    case 'failed':
      v.outcome = 'failed';
      v.error = e.error;
      v.stage = 'Failed';
      break;
    case 'cancelled':
      v.outcome = 'cancelled';
      v.stage = 'Stopped';
      break;
  }
  return v;
}

let stream = null;
let estimateTimer = null;

export function leave() {
  stream?.close();
  stream = null;
  clearTimeout(estimateTimer);
}

export async function render(root, studio) {
  ensureCss('train.css');
  leave();
  const [opts, list] = await Promise.all([api('/api/train/options'), api('/api/train/runs')]);
  const ui = {};

  // ---- the settings ----
  const modeRadio = (value, title, hint) =>
    el('label', { class: 'choice' }, el('input', { type: 'radio', name: 'mode', value, checked: value === opts.defaults.mode, onchange: () => onMode() }), el('span', {}, el('strong', { text: title }), el('span', { class: 'hint', text: hint })));
  const backbone = el(
    'select',
    { id: 'train-backbone', 'aria-describedby': 'train-backbone-hint' },
    opts.backbones.map((b) => el('option', { value: b.id, selected: b.id === opts.defaults.backbone, text: `${b.name} — ${b.installed ? mb(b.bytes) : 'not installed yet'}${b.speed !== 'unknown' ? `, ${b.speed} (about ${b.imagesPerSecond} photos/s)` : ''}` })),
  );
  const epochs = el('input', { id: 'train-epochs', type: 'number', min: '1', max: '1000', step: '1', inputmode: 'numeric', value: String(opts.defaults.epochs.transfer), 'aria-describedby': 'train-epochs-hint' });
  const augment = el('input', { id: 'train-augment', type: 'checkbox', 'aria-describedby': 'train-augment-hint' });
  const force = el('input', { id: 'train-force', type: 'checkbox' });
  const estimate = el('p', { id: 'train-estimate', class: 'estimate', 'aria-live': 'polite' });
  const start = el('button', { id: 'train-start', type: 'submit', class: 'primary big', text: 'Start training', 'aria-describedby': 'train-start-note' });
  const startNote = el('span', { id: 'train-start-note', class: 'hint' });
  const mode = () => root.querySelector('input[name=mode]:checked')?.value || 'transfer';
  let epochsTouched = false;
  epochs.addEventListener('input', () => {
    epochsTouched = true;
    scheduleEstimate();
  });
  backbone.addEventListener('change', () => scheduleEstimate());
  function onMode() {
    const m = mode();
    if (!epochsTouched) epochs.value = String(opts.defaults.epochs[m]);
    augment.disabled = m !== 'finetune';
    if (m !== 'finetune') augment.checked = false;
    scheduleEstimate();
  }
  function scheduleEstimate() {
    clearTimeout(estimateTimer);
    estimateTimer = setTimeout(async () => {
      try {
        const e = await api(`/api/train/estimate?${qs({ mode: mode(), backbone: backbone.value, epochs: epochs.value })}`);
        estimate.textContent = `${plural(e.images, 'photo')} in this project. ${e.text}`;
      } catch (err) {
        estimate.textContent = err.message;
      }
    }, 150);
  }

  const form = el(
    'form',
    { class: 'card train-settings', id: 'train-form', 'aria-labelledby': 'train-settings-title' },
    el('h2', { id: 'train-settings-title', text: 'Settings' }),
    el(
      'fieldset',
      { class: 'modes' },
      el('legend', { text: 'How to train' }),
      modeRadio('transfer', MODE_WORDS.transfer, 'Reuses what a ready-made model already knows about photos; only its last step learns your classes. Seconds to minutes. Start here.'),
      modeRadio('finetune', MODE_WORDS.finetune, 'Also adjusts the ready-made model itself to your photos. Often a little more accurate, but many times slower.'),
    ),
    el('div', { class: 'field' }, el('label', { for: 'train-backbone', text: 'Ready-made model ("backbone")' }), backbone, el('p', { id: 'train-backbone-hint', class: 'hint', text: 'A network that already learned to see from millions of photos. Smaller ones are faster; bigger ones can be more accurate.' })),
    el('div', { class: 'field' }, el('label', { for: 'train-epochs', text: 'Epochs' }), epochs, el('p', { id: 'train-epochs-hint', class: 'hint', text: 'How many times the model goes through all your training photos. The best round is kept, so more is rarely worse, only slower.' })),
    el('div', { class: 'field check' }, augment, el('label', { for: 'train-augment', text: 'Photo variations ("augmentation")' }), el('p', { id: 'train-augment-hint', class: 'hint', text: 'Shows the model randomly cropped, flipped, slightly turned and recoloured copies of your photos, so it learns what matters rather than the exact picture. Thorough training only.' })),
    el('details', { class: 'more' }, el('summary', { text: 'More' }), el('div', { class: 'field check' }, force, el('label', { for: 'train-force', text: 'Train even if the data check finds the same photo in two classes' }))),
    estimate,
    el('div', { class: 'row' }, start, startNote),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    start.disabled = true;
    try {
      const { run } = await api('/api/runs', { method: 'POST', json: { mode: mode(), backbone: backbone.value, epochs: epochs.value === '' ? undefined : Number(epochs.value), augment: augment.checked, force: force.checked } });
      studio.say('Training started. You can leave this page; it keeps going.');
      await refreshHistory();
      watch(run);
      ui.live.focus();
    } catch (e) {
      studio.fail(e);
    } finally {
      start.disabled = shown?.status === 'running';
    }
  });

  // ---- the live view ----
  ui.title = el('h2', { id: 'live-title', text: 'Progress' });
  ui.stage = el('p', { id: 'live-stage', class: 'stage', role: 'status', 'aria-live': 'polite' });
  ui.bar = el('progress', { id: 'live-progress', max: '1', value: '0', 'aria-labelledby': 'live-stage' });
  ui.detail = el('p', { id: 'live-detail', class: 'muted detail' });
  ui.loss = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  ui.acc = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  for (const [svg, id] of [[ui.loss, 'curve-loss'], [ui.acc, 'curve-accuracy']]) {
    svg.id = id;
    svg.setAttribute('role', 'img');
    svg.classList.add('chart');
  }
  ui.curveText = el('p', { id: 'curve-text', class: 'muted' });
  ui.cancel = el('button', { id: 'train-cancel', type: 'button', class: 'danger', text: 'Cancel training', hidden: true });
  ui.resume = el('button', { id: 'train-resume', type: 'button', class: 'primary', text: 'Resume training', hidden: true });
  ui.review = el('a', { id: 'train-review', class: 'button primary', href: '#review', text: 'Review the results', hidden: true });
  ui.result = el('p', { id: 'live-result', class: 'result-line' });
  ui.live = el(
    'section',
    { class: 'card live', id: 'live', tabindex: '-1', 'aria-labelledby': 'live-title', hidden: true },
    ui.title,
    ui.stage,
    ui.bar,
    ui.detail,
    ui.result,
    el('div', { class: 'charts' }, ui.loss, ui.acc),
    ui.curveText,
    el('p', { class: 'hint', text: 'Training photos are the ones the model learns from. Validation photos are held back to check the model while it learns; test photos are kept aside until the end, for an honest score.' }),
    el('div', { class: 'row' }, ui.cancel, ui.resume, ui.review),
  );

  // ---- the history ----
  ui.history = el('tbody', { id: 'history-rows' });
  const history = el(
    'section',
    { class: 'card', 'aria-labelledby': 'history-title' },
    el('h2', { id: 'history-title', text: 'Earlier trainings' }),
    el('div', { class: 'table-wrap' }, el('table', { class: 'history' }, el('thead', {}, el('tr', {}, ['Started', 'How', 'Model', 'Epochs', 'Result', ''].map((h) => el('th', { scope: 'col', text: h })))), ui.history)),
  );

  root.append(el('h1', { text: 'Train' }), el('div', { class: 'train-layout' }, form, ui.live), history);
  onMode();

  let runs = list.runs;
  let shown = null;
  function historyRows() {
    ui.history.replaceChildren(
      ...(runs.length
        ? runs.map((r) =>
            el(
              'tr',
              { class: shown?.id === r.id ? 'current' : '' },
              el('td', { text: when(r.startedAt) }),
              el('td', { text: MODE_WORDS[r.mode] || r.mode }),
              el('td', { class: 'path', text: r.backbone ? r.backbone.split('/').pop() : '' }),
              el('td', { text: r.epochs ?? '' }),
              el('td', {}, r.status === 'done' ? `${pct(r.testAccuracy)} of test photos right` : el('span', { class: `status-${r.status}`, text: STATUS_WORDS[r.status] || r.status })),
              el(
                'td',
                { class: 'actions' },
                el('button', { type: 'button', class: 'small', text: 'Show', 'aria-label': `Show the training of ${when(r.startedAt)}`, onclick: () => watch(r) }),
                r.resumable ? el('button', { type: 'button', class: 'small primary', text: 'Resume', 'aria-label': `Resume the training of ${when(r.startedAt)}`, onclick: () => resume(r) }) : null,
                r.status === 'done' ? el('a', { class: 'button small', href: `#review?run=${encodeURIComponent(r.id)}`, text: 'Review' }) : null,
              ),
            ),
          )
        : [el('tr', {}, el('td', { colspan: '6', class: 'muted', text: 'No trainings yet. Choose the settings above and press Start training.' }))]),
    );
  }
  async function refreshHistory() {
    try {
      runs = (await api('/api/train/runs')).runs;
    } catch (e) {
      studio.fail(e);
    }
    historyRows();
  }
  async function resume(r) {
    try {
      const { run } = await api(`/api/runs/${encodeURIComponent(r.id)}/resume`, { method: 'POST' });
      studio.say('Training resumed.');
      await refreshHistory();
      watch(run);
    } catch (e) {
      studio.fail(e);
    }
  }
  ui.cancel.addEventListener('click', async () => {
    if (!shown) return;
    ui.cancel.disabled = true;
    try {
      await api(`/api/runs/${encodeURIComponent(shown.id)}/cancel`, { method: 'POST' });
      studio.say('Stopping at the next safe point…');
    } catch (e) {
      studio.fail(e);
    }
  });
  ui.resume.addEventListener('click', () => shown && resume(shown));

  // ---- following a run ----
  function show(run, v) {
    ui.live.hidden = false;
    ui.title.textContent = `Training of ${when(run.startedAt)} · ${MODE_WORDS[run.mode] || run.mode}`;
    const running = run.status === 'running';
    ui.stage.textContent = running ? v.stage : run.status === 'done' ? 'Finished' : run.status === 'failed' ? 'This training failed' : run.status === 'stopped' ? 'Stopped: the studio was closed during this training' : 'Cancelled';
    const x = v.extract;
    const lastEpoch = v.epochs.at(-1);
    if (running && x && x.done < x.total && !lastEpoch) {
      ui.bar.max = x.total;
      ui.bar.value = x.done;
      ui.detail.textContent = `Reading the photos: ${x.done.toLocaleString()} of ${x.total.toLocaleString()}${x.rate ? ` · ${Math.round(x.rate)} photos/s` : ''}${x.etaSeconds ? ` · about ${secs(x.etaSeconds)} left` : ''}`;
    } else if (lastEpoch) {
      const total = lastEpoch.epochs;
      ui.bar.max = total;
      ui.bar.value = running ? lastEpoch.epoch : total;
      const b = v.batch && running ? ` · photos ${v.batch.done} of ${v.batch.total} in epoch ${v.batch.epoch}` : '';
      ui.detail.textContent = running ? `${lastEpoch.phase === 'network' ? 'Fine-tuning' : 'Learning'}: epoch ${lastEpoch.epoch} of ${total}${b}` : `${v.epochs.length} epoch${v.epochs.length === 1 ? '' : 's'} trained`;
    } else if (x) {
      ui.bar.max = x.total || 1;
      ui.bar.value = x.done;
      ui.detail.textContent = `Read ${x.done.toLocaleString()} of ${x.total.toLocaleString()} photos`;
    } else {
      ui.bar.removeAttribute('value');
      ui.detail.textContent = '';
    }
    ui.bar.hidden = !running && run.status === 'done';
    ui.result.className = 'result-line';
    if (run.status === 'done') {
      ui.result.textContent = `The model got ${pct(run.testAccuracy ?? v.testAccuracy)} of the test photos right (photos it never saw while learning)${run.valAccuracy !== undefined ? `, ${pct(run.valAccuracy)} of the validation photos` : ''}.`;
      ui.result.classList.add('ok');
    } else if (run.status === 'failed') {
      ui.result.textContent = run.error || v.error || 'The training failed.';
      ui.result.classList.add('error');
    } else if (run.status === 'stopped' || run.status === 'cancelled') {
      ui.result.textContent = run.resumable ? 'Press Resume training to continue where it stopped.' : 'Start a new training to try again.';
    } else ui.result.textContent = '';
    ui.cancel.hidden = !running;
    start.disabled = running;
    startNote.textContent = running ? 'One training at a time: wait for this one to finish, or cancel it.' : '';
    ui.cancel.disabled = false;
    ui.resume.hidden = !run.resumable;
    ui.review.hidden = run.status !== 'done';
    ui.review.href = `#review?run=${encodeURIComponent(run.id)}`;
    const e = v.epochs;
    const series = (key) => e.map((p) => (p[key] === null || p[key] === undefined ? null : p[key]));
    drawChart(ui.loss, { title: 'Loss (lower is better)', series: [{ name: 'training', values: series('loss') }, { name: 'validation', values: series('val_loss'), dashed: true }], marks: v.marks });
    drawChart(ui.acc, { title: 'Accuracy (higher is better)', pct: true, series: [{ name: 'training', values: series('acc') }, { name: 'validation', values: series('val_acc'), dashed: true }], marks: v.marks });
    const l = e.at(-1);
    const words = l ? `After epoch ${l.epoch} of ${l.epochs}: ${pct(l.acc)} of training photos right, ${pct(l.val_acc)} of validation photos; loss ${Number(l.loss).toFixed(3)} (training), ${l.val_loss === null ? '–' : Number(l.val_loss).toFixed(3)} (validation).` : 'The curves appear when the first epoch ends.';
    ui.curveText.textContent = words;
    ui.loss.setAttribute('aria-label', `Loss per epoch. ${words}`);
    ui.acc.setAttribute('aria-label', `Accuracy per epoch. ${words}`);
    ui.live.dataset.status = run.status;
    ui.live.dataset.epochs = String(e.length);
    ui.live.dataset.updates = String(Number(ui.live.dataset.updates || 0) + 1);
  }

  function watch(run) {
    stream?.close();
    shown = { ...run };
    historyRows();
    const v = emptyView();
    let pending = false;
    const redraw = () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        show(shown, v);
      });
    };
    show(shown, v);
    const es = new EventSource(`/api/runs/${encodeURIComponent(run.id)}/events`);
    stream = es;
    es.onmessage = (m) => {
      foldEvent(v, JSON.parse(m.data).event);
      redraw();
    };
    es.addEventListener('status', (m) => {
      const was = shown.status;
      shown = JSON.parse(m.data);
      redraw();
      if (was !== shown.status) refreshHistory();
    });
    es.addEventListener('end', () => {
      es.close();
      if (stream === es) stream = null;
      refreshHistory();
      redraw();
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) studio.fail(new Error('lost the connection to the studio: is it still running? Reload the page when it is.'));
    };
  }

  historyRows();
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const pick = runs.find((r) => r.id === params.get('run')) || runs.find((r) => r.status === 'running') || runs.find((r) => r.resumable) || runs[0];
  if (pick) watch(pick);
}
