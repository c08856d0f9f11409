// The Export page: download a finished run's model as a zip (ONNX, TF.js, or the web folder: a page that runs the
// model in the browser), and the exact command that serves it as an HTTP API.
import { qs } from './api.js';
import { el } from './dom.js';
import { finishedRuns, noRuns, runSelect } from './runs.js';

const FORMATS = [
  { id: 'web', title: 'Web page', text: 'A folder with a page that runs the model in any browser, without a server: put it on any web host.' },
  { id: 'onnx', title: 'ONNX', text: 'One model file for apps and other tools (onnxruntime in Python, C#, Java, phones…), with its labels in metadata.json.' },
  { id: 'tfjs', title: 'TensorFlow.js', text: 'The model as TensorFlow.js files (model.json and weights), for JavaScript projects.' },
];

export async function render(root, studio) {
  root.append(el('h1', { text: 'Export' }));
  const runs = await finishedRuns().catch((e) => (studio.fail(e), []));
  if (!runs.length) return noRuns(root, studio, 'Export');
  const pick = runSelect(runs, 'export-run');
  const cmd = el('code', { class: 'cmd', id: 'serve-command' });
  const copy = el('button', { type: 'button', text: 'Copy the command', onclick: async () => {
    try {
      await navigator.clipboard.writeText(cmd.textContent);
      studio.say('Copied');
    } catch {
      studio.say('Select the command and copy it (Ctrl+C)');
    }
  } });
  const links = el('div', { class: 'columns' });
  const update = () => {
    const r = runs.find((x) => x.id === pick.value) || runs[0];
    cmd.textContent = r.serve;
    links.replaceChildren(
      ...FORMATS.map((f) =>
        el('div', { class: 'card' }, el('h2', { text: f.title }), el('p', { class: 'muted', text: f.text }), el('a', { class: 'button primary', id: `export-${f.id}`, href: `/api/export?${qs({ run: r.id, format: f.id })}`, download: '', text: `Download ${f.title} (.zip)` })),
      ),
    );
  };
  pick.addEventListener('change', update);
  root.append(
    el('section', { class: 'card' }, el('label', { for: 'export-run', text: 'Model' }), pick, el('p', { class: 'muted', text: 'Making a download takes a few seconds: the files are written, then zipped.' })),
    links,
    el('section', { class: 'card' }, el('h2', { text: 'Serve it as an API' }), el('p', { class: 'muted', text: 'In a terminal, this starts a server that answers with the model (and has a page to try it):' }), cmd, el('div', { class: 'row' }, copy)),
  );
  update();
}
