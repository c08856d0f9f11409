// The studio's shell: the navigation (Data · Train · Review · Try · Export, and Projects), one page module at a
// time in <main> (each exports render(root, studio)), a status line, and Undo for the latest file action.
import { api } from './api.js';
import { el } from './dom.js';

const PAGES = [
  { id: 'data', title: 'Data', module: './data.js', needsProject: true },
  { id: 'train', title: 'Train', module: './train.js', needsProject: true },
  { id: 'review', title: 'Review', module: './review.js', needsProject: true },
  { id: 'try', title: 'Try', module: './try.js', needsProject: true },
  { id: 'export', title: 'Export', module: './export.js', needsProject: true },
  { id: 'projects', title: 'Projects', module: './projects.js', needsProject: false },
];

const $ = (id) => document.getElementById(id);
let toastTimer;

const studio = {
  api,
  project: null,
  /** A message in the status line (errors stay until the next message). */
  say(msg, isError = false) {
    const t = $('toast');
    t.textContent = msg;
    t.classList.toggle('error', isError);
    t.classList.add('show');
    clearTimeout(toastTimer);
    if (!isError) toastTimer = setTimeout(() => t.classList.remove('show'), 5000);
  },
  fail(e) {
    studio.say(e?.message || String(e), true);
  },
  go(page) {
    location.hash = `#${page}`;
  },
  /** Called after any file action: refreshes Undo and tells the open page. */
  async changed() {
    await refreshUndo();
    await current?.mod?.refresh?.();
  },
  async loadProject(withRecent = true) {
    const r = await api(`/api/projects${withRecent ? '' : '?recent=0'}`);
    studio.project = r.current;
    $('project-name').textContent = r.current ? `· ${r.current.name}` : '';
    document.title = r.current ? `${r.current.name} · tlearn studio` : 'tlearn studio';
    return r;
  },
};
window.tlearnStudio = studio; // for tests and the console

let current = null;
let lastAction = null;

async function refreshUndo() {
  const b = $('undo');
  if (!studio.project) {
    b.disabled = true;
    return;
  }
  try {
    const { actions } = await api('/api/actions');
    lastAction = actions.find((a) => !a.undone && !a.undoOf) || null;
  } catch {
    lastAction = null;
  }
  b.disabled = !lastAction;
  b.textContent = 'Undo';
  b.title = lastAction ? `Undo: ${lastAction.title}` : 'Nothing to undo';
  b.setAttribute('aria-label', lastAction ? `Undo: ${lastAction.title}` : 'Undo (nothing to undo)');
}

async function undo() {
  if (!lastAction) return;
  const a = lastAction;
  try {
    $('undo').disabled = true;
    await api('/api/actions/undo', { method: 'POST', json: { id: a.id } });
    studio.say(`Undone: ${a.title}`);
  } catch (e) {
    studio.fail(e);
  }
  await studio.changed();
}

/** The history of file changes, newest first, each with its own Undo (any of them, not only the latest). */
async function showHistory() {
  if (!studio.project) return studio.say('open a project first', true);
  let actions;
  try {
    ({ actions } = await api('/api/actions'));
  } catch (e) {
    return studio.fail(e);
  }
  const list = el('ol', { class: 'history', id: 'history-list' });
  const fill = (items) =>
    list.replaceChildren(
      ...items.map((a) =>
        el(
          'li',
          {},
          el('span', { class: 'when muted', text: new Date(a.at).toLocaleString() }),
          el('span', { class: 'what', text: a.title + (a.recovered ? ' (finished after a restart)' : '') + (a.failed ? ' (did not finish)' : '') }),
          a.undoOf
            ? el('span', { class: 'muted', text: '' })
            : el('button', {
                type: 'button',
                class: 'small',
                disabled: a.undone,
                text: a.undone ? 'Undone' : 'Undo',
                'aria-label': a.undone ? `${a.title}: undone` : `Undo: ${a.title}`,
                onclick: async () => {
                  try {
                    await api('/api/actions/undo', { method: 'POST', json: { id: a.id } });
                    studio.say(`Undone: ${a.title}`);
                    await studio.changed();
                    fill((await api('/api/actions')).actions);
                  } catch (e) {
                    studio.fail(e);
                  }
                },
              }),
        ),
      ),
    );
  fill(actions);
  const dlg = el('dialog', { class: 'ask history-dialog', 'aria-label': 'History' }, el('h2', { text: 'History' }), el('p', { class: 'muted', text: 'Every change the studio made to the files of this project. Undo puts the files back exactly as they were.' }), actions.length ? list : el('p', { text: 'No changes yet.' }), el('div', { class: 'row' }, el('button', { type: 'button', class: 'primary', text: 'Close', onclick: () => dlg.close() })));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

function buildNav() {
  const nav = $('nav');
  nav.replaceChildren(...PAGES.map((p) => el('a', { href: `#${p.id}`, id: `nav-${p.id}`, text: p.title })));
}

async function route() {
  // '#review?run=<id>': the page, then its parameters (the page reads them from location.hash)
  const id = (location.hash || '').slice(1).split('?')[0] || (studio.project ? 'data' : 'projects');
  const page = PAGES.find((p) => p.id === id) || PAGES[0];
  if (page.needsProject && !studio.project) return studio.go('projects');
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.id === `nav-${page.id}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current?.mod?.leave?.();
  const main = $('main');
  main.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  try {
    const mod = await import(page.module);
    current = { page, mod };
    main.replaceChildren();
    main.dataset.page = page.id;
    await mod.render(main, studio);
  } catch (e) {
    main.replaceChildren(el('p', { class: 'error', text: e?.message || String(e) }));
  }
}

async function start() {
  // the Data page's list is asked for at once, alongside the project (it is the first page shown)
  if (!location.hash || location.hash === '#data') studio.prefetched = api('/api/classes?images=1').catch(() => null);
  buildNav();
  $('undo').addEventListener('click', undo);
  $('history').addEventListener('click', showHistory);
  try {
    await studio.loadProject(false);
  } catch (e) {
    studio.fail(e);
  }
  refreshUndo();
  window.addEventListener('hashchange', route);
  await route();
}

start();
