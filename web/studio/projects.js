// Projects: the recent ones (open with one click), open a folder by its path, or make a new empty project.
import { api } from './api.js';
import { el } from './dom.js';

export async function render(root, studio) {
  const r = await studio.loadProject();
  root.append(el('h1', { text: 'Projects' }));
  root.append(el('p', { class: 'muted', text: 'A project is a folder with one folder per class (for example cats/ and dogs/), the images inside.' }));

  const open = async (folder) => {
    try {
      await api('/api/projects/open', { method: 'POST', json: { folder } });
      await studio.loadProject();
      await studio.changed();
      studio.go('data');
    } catch (e) {
      studio.fail(e);
    }
  };

  // new project
  const name = el('input', { id: 'new-name', type: 'text', placeholder: 'for example: my-plants', autocomplete: 'off', required: true });
  const where = el('input', { id: 'new-where', type: 'text', value: r.defaultFolder, autocomplete: 'off' });
  const form = el(
    'form',
    { class: 'card new-project', id: 'new-project' },
    el('h2', { text: 'New project' }),
    el('label', { for: 'new-name', text: 'Name' }),
    name,
    el('label', { for: 'new-where', text: 'Where (the project becomes a new folder in here)' }),
    where,
    el('div', { class: 'row' }, el('button', { type: 'submit', class: 'primary', text: 'Create project' })),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('/api/projects/create', { method: 'POST', json: { name: name.value.trim(), parent: where.value.trim() } });
      await studio.loadProject();
      studio.say(`Created ${name.value.trim()}`);
      studio.go('data');
    } catch (e) {
      studio.fail(e);
    }
  });

  // open a folder
  const path = el('input', { id: 'open-path', type: 'text', placeholder: '/home/me/photos', autocomplete: 'off' });
  const openForm = el('form', { class: 'card', id: 'open-project' }, el('h2', { text: 'Open a folder' }), el('label', { for: 'open-path', text: 'Full path of a folder of class folders' }), path, el('div', { class: 'row' }, el('button', { type: 'submit', text: 'Open' })));
  openForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (path.value.trim()) open(path.value.trim());
  });

  const list = el('ul', { class: 'recent', id: 'recent' });
  for (const p of r.recent) {
    const isCurrent = r.current?.root === p.root;
    list.append(
      el(
        'li',
        {},
        el('button', { type: 'button', class: isCurrent ? 'primary' : '', disabled: !p.exists, onclick: () => open(p.root), text: p.name }),
        el('span', { class: 'muted path', text: p.exists ? p.root : `${p.root} (missing)` }),
        isCurrent ? el('span', { class: 'badge', text: 'open now' }) : null,
      ),
    );
  }
  root.append(el('div', { class: 'columns' }, form, openForm), el('section', { class: 'card' }, el('h2', { text: 'Recent projects' }), r.recent.length ? list : el('p', { class: 'muted', text: 'None yet: create one above.' })));
  if (!r.current) name.focus();
}
