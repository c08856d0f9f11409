// The run picker shared by Try and Export: finished runs of the project, newest first.
import { api } from './api.js';
import { el } from './dom.js';

export async function finishedRuns() {
  const { runs } = await api('/api/runs');
  return runs.filter((r) => r.status === 'done').sort((a, b) => String(b.startedAt).localeCompare(String(a.startedAt)));
}

export function runLabel(r) {
  const when = r.startedAt ? new Date(r.startedAt).toLocaleString() : '';
  const acc = typeof r.testAccuracy === 'number' ? ` · ${(100 * r.testAccuracy).toFixed(1)}% right on test pictures` : '';
  return `${r.id} (${r.mode || 'run'}, ${when})${acc}`;
}

export function runSelect(runs, id) {
  return el('select', { id }, runs.map((r, i) => el('option', { value: r.id, text: `${i === 0 ? 'Latest: ' : ''}${runLabel(r)}` })));
}

export function noRuns(root, studio, what) {
  root.append(el('div', { class: 'card' }, el('p', { text: `No trained model yet. ${what} needs one: train first.` }), el('button', { type: 'button', class: 'primary', text: 'Go to Train', onclick: () => studio.go('train') })));
}
