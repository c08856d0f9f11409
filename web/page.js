// The try-it page: pick a model, drop / paste / choose images or use the webcam, see the top classes as bars.
// Mode "server" (tlearn serve) sends each image to the HTTP API; mode "local" (tlearn export --format web)
// runs the model in the browser with classifier.js. All URLs are relative, so the page works under a prefix.
const mode = document.querySelector('meta[name="tlearn-mode"]')?.content === 'local' ? 'local' : 'server';
const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const c of children) if (c != null) e.append(c);
  return e;
};
const pct = (p) => `${(100 * p).toFixed(1)}%`;

const state = { models: [], model: null, key: sessionStorage.getItem('tlearn-api-key') || '', local: null, stream: null };

function status(msg, isError = false) {
  $('status').textContent = msg;
  $('status').classList.toggle('error', isError);
}

// ---- server mode: the HTTP API ----
async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (state.key) headers.authorization = `Bearer ${state.key}`;
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) {
    $('key-form').hidden = false;
    $('key').focus();
    throw new Error('this server needs an API key: enter it above');
  }
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}`, detail: '' }));
  if (!res.ok) throw new Error(body.detail || body.error);
  return body;
}

function params() {
  const q = new URLSearchParams({ top: String(Math.max(1, Number($('top').value) || 5)) });
  if ($('threshold').value !== '') q.set('threshold', $('threshold').value);
  return q;
}

async function classifyOnServer(blob) {
  const r = await api(`v1/models/${encodeURIComponent(state.model.name)}/predict?${params()}`, {
    method: 'POST',
    headers: { 'content-type': blob.type && blob.type.startsWith('image/') ? blob.type : 'application/octet-stream' },
    body: blob,
  });
  return r.predictions[0];
}

// ---- local mode: the model in the browser ----
async function loadLocal() {
  const { load } = await import('../classifier.js');
  status('loading the model…');
  state.local = await load(new URL('./', document.baseURI).href);
  const m = state.local.metadata;
  return [{ ...cardFromMetadata(m), name: m.name || 'model' }];
}

function cardFromMetadata(m) {
  return {
    labels: m.labels,
    classes: m.labels.length,
    inputSize: m.inputSize,
    preprocessingDescription: m.preprocessingDescription,
    resize: m.resize,
    backbone: m.backbone,
    threshold: m.threshold ? { value: m.threshold.value, rule: m.threshold.rule } : null,
    test: m.test || null,
    report: null,
  };
}

async function classifyLocally(input) {
  const t = $('threshold').value;
  return state.local.classify(input, { top: Math.max(1, Number($('top').value) || 5), threshold: t === '' ? undefined : Number(t) });
}

// ---- the model card ----
function showCard(m) {
  const dl = $('card-body');
  dl.replaceChildren();
  const row = (k, v) => dl.append(el('dt', { textContent: k }), el('dd', {}, v));
  $('card-title').textContent = `Model: ${m.name}`;
  if (m.test) {
    row('test accuracy', `${pct(m.test.accuracy)} (top-5 ${pct(m.test.top5)}, ${m.test.images} images)`);
  } else row('test accuracy', 'not recorded');
  const labels = el('details', {}, el('summary', { textContent: `${m.classes} classes` }), el('ol', { className: 'labels' }, ...m.labels.map((l) => el('li', { textContent: l }))));
  row('labels', labels);
  row('backbone', `${m.backbone?.name ?? '?'}${m.backbone?.params ? ` (${m.backbone.params.toLocaleString('en')} parameters)` : ''}`);
  row('input', `${m.inputSize[0]}×${m.inputSize[1]}, ${m.resize}; ${m.preprocessingDescription}`);
  row('threshold', m.threshold ? `${m.threshold.value.toFixed(3)}: ${m.threshold.rule}` : 'none');
  if (m.report) {
    const a = el('a', { href: m.report.replace(/^\//, ''), textContent: 'report.html', target: '_blank', rel: 'noopener' });
    if (state.key) {
      // The report is behind the API key: fetch it with the key and open what came back.
      a.addEventListener('click', async (e) => {
        e.preventDefault();
        const res = await fetch(a.getAttribute('href'), { headers: { authorization: `Bearer ${state.key}` } });
        window.open(URL.createObjectURL(await res.blob()), '_blank', 'noopener');
      });
    }
    row('report', a);
  }
  $('threshold').placeholder = m.threshold ? m.threshold.value.toFixed(3) : 'none';
}

// ---- results ----
function resultItem(name, thumbUrl) {
  const li = el('li', { className: 'result' });
  li.append(thumbUrl ? el('img', { src: thumbUrl, alt: name }) : el('span', { className: 'thumb-none', textContent: '?' }), el('div', { className: 'body' }, el('h3', { textContent: name }), el('p', { className: 'meta', textContent: 'classifying…' })));
  $('results').prepend(li);
  return li;
}

function showPrediction(li, p) {
  const body = li.querySelector('.body');
  const meta = el('p', { className: 'meta' });
  if (p.unknown) {
    li.classList.add('is-unknown');
    meta.append(el('span', { className: 'badge unknown', textContent: 'unknown' }), ` best ${pct(p.top[0].probability)} is under the threshold`);
  } else meta.append(el('span', { className: 'badge best', textContent: p.top[0].label }));
  meta.append(el('span', { className: 'ms', textContent: `${p.ms.toFixed(1)} ms` }));
  const bars = el('ul', { className: 'bars' });
  for (const t of p.top) {
    const fill = el('span', { className: 'fill' });
    fill.style.width = pct(t.probability);
    bars.append(el('li', {}, el('span', { className: 'label', textContent: t.label, title: t.label }), el('span', { className: 'track', role: 'img', ariaLabel: `${t.label} ${pct(t.probability)}` }, fill), el('span', { className: 'pct', textContent: pct(t.probability) })));
  }
  body.querySelector('.meta').replaceWith(meta);
  body.append(bars);
  li.dataset.label = p.unknown ? 'unknown' : p.top[0].label;
}

function showFailure(li, e) {
  li.classList.add('failed');
  li.querySelector('.meta').replaceWith(el('p', { className: 'error', textContent: e.message || String(e) }));
}

async function classifyBlob(blob, name) {
  const li = resultItem(name, URL.createObjectURL(blob));
  try {
    showPrediction(li, mode === 'local' ? await classifyLocally(blob) : await classifyOnServer(blob));
  } catch (e) {
    showFailure(li, e);
  }
}

async function classifyFiles(files) {
  if (!state.model) return status('no model loaded', true);
  const all = [...files];
  const images = all.filter((f) => f.type.startsWith('image/') || f.type === '');
  for (const f of all.filter((f) => !images.includes(f))) showFailure(resultItem(f.name, ''), new Error(`not an image file (${f.type})`));
  if (!images.length) return status('no image among the files', true);
  status(`classifying ${images.length} image${images.length > 1 ? 's' : ''}…`);
  const t0 = performance.now();
  await Promise.all(images.map((f) => classifyBlob(f, f.name || 'pasted image')));
  status(`${images.length} image${images.length > 1 ? 's' : ''} in ${Math.round(performance.now() - t0)} ms`);
}

// ---- webcam ----
async function startCamera() {
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    return status(`webcam unavailable: ${e.message || e.name}`, true);
  }
  $('video').srcObject = state.stream;
  $('camera').hidden = false;
  $('camera-start').disabled = true;
  $('capture').focus();
}

function stopCamera() {
  state.stream?.getTracks().forEach((t) => t.stop());
  state.stream = null;
  $('camera').hidden = true;
  $('camera-start').disabled = false;
}

async function captureFrame() {
  const v = $('video');
  if (!v.videoWidth) return status('the webcam has no picture yet', true);
  const canvas = el('canvas', { width: v.videoWidth, height: v.videoHeight });
  canvas.getContext('2d').drawImage(v, 0, 0);
  // PNG: lossless, so the server sees exactly the captured frame.
  const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
  await classifyBlob(blob, `webcam ${new Date().toLocaleTimeString()}`);
}

// ---- wiring ----
function selectModel(name) {
  state.model = state.models.find((m) => m.name === name) || state.models[0];
  if (state.model) showCard(state.model);
}

async function start() {
  $('mode-note').textContent =
    mode === 'local'
      ? 'tlearn: the model runs in this browser (onnxruntime-web); no image leaves this computer. Images are resized in JavaScript the way training resizes them.'
      : 'tlearn: the model runs on the tlearn server; images are decoded and preprocessed exactly as in training.';
  try {
    state.models = mode === 'local' ? await loadLocal() : (await api('v1/models')).models;
    $('key-form').hidden = true;
    $('model').replaceChildren(...state.models.map((m) => el('option', { value: m.name, textContent: `${m.name} (${m.classes} classes)` })));
    $('model').disabled = state.models.length < 2;
    selectModel(state.models[0]?.name);
    status('ready: drop, paste or choose images, or use the webcam');
    document.body.dataset.ready = 'true';
  } catch (e) {
    status(e.message || String(e), true);
  }
}

$('model').addEventListener('change', (e) => selectModel(e.target.value));
$('choose').addEventListener('click', () => $('files').click());
$('files').addEventListener('change', (e) => {
  void classifyFiles(e.target.files);
  e.target.value = '';
});
const drop = $('drop');
drop.addEventListener('click', () => $('files').click());
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    $('files').click();
  }
});
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  void classifyFiles(e.dataTransfer.files);
});
document.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files || [])];
  if (files.length) void classifyFiles(files);
});
$('camera-start').addEventListener('click', () => void startCamera());
$('camera-stop').addEventListener('click', stopCamera);
$('capture').addEventListener('click', () => void captureFrame());
$('clear').addEventListener('click', () => {
  $('results').replaceChildren();
  status('');
});
$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.key = $('key').value.trim();
  sessionStorage.setItem('tlearn-api-key', state.key);
  void start();
});
if (!navigator.mediaDevices?.getUserMedia) $('camera-start').hidden = true;
void start();
