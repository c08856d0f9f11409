// The Data page: one card per class (its name, how many images, a scrolling grid of thumbnails), and every way to
// add images: drop files or whole folders on a card (or on the page), paste, the "Add images" button, the webcam.
// Rename, merge and delete classes; select thumbnails to remove them or move them to another class; Undo is at
// the top. "Check my images" lists what is wrong with the data and how to fix it.
import { api, qs } from './api.js';
import { ask, confirmDialog, el, plural } from './dom.js';
import { showFindings } from './findings.js';
import { ThumbGrid } from './grid.js';
import { WebcamPanel } from './webcam.js';

const BATCH_FILES = 20;
const BATCH_BYTES = 20 * 1024 * 1024;

let page = null;

export async function render(root, studio) {
  page = new DataPage(root, studio);
  await page.load();
}

export function refresh() {
  return page?.load();
}

export function leave() {
  page?.webcam.stop();
  for (const g of page?.grids.values() ?? []) g.destroy();
  page = null;
}

/** Every file under a dropped entry (folders walked), with the folder it came from. */
async function entryFiles(entry, out = []) {
  if (entry.isFile) {
    out.push(await new Promise((res, rej) => entry.file(res, rej)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) if (!e.name.startsWith('.')) await entryFiles(e, out);
    }
  }
  return out;
}

async function entrySubfolders(entry) {
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    out.push(...batch.filter((e) => e.isDirectory && !e.name.startsWith('.')));
  }
  return out;
}

class DataPage {
  constructor(root, studio) {
    this.root = root;
    this.studio = studio;
    this.classes = [];
    this.grids = new Map();
    this.cards = new Map();
    this.selected = new Set();
    this.lastClass = null;
    this.webcam = new WebcamPanel(() => this.classes.map((c) => c.name), (cls, files) => this.upload(cls, files), (m, e) => studio.say(m, e));
    this.list = el('div', { class: 'classes', id: 'classes' });
    this.selBar = el('div', { class: 'selection-bar', id: 'selection', hidden: true });
    this.findings = el('section', { class: 'card findings', id: 'findings', hidden: true, 'aria-live': 'polite' });
    const fileInput = el('input', { type: 'file', multiple: true, accept: 'image/*', hidden: true, id: 'page-files' });
    root.append(
      el('h1', { text: 'Data' }),
      el(
        'div',
        { class: 'toolbar' },
        el('button', { type: 'button', class: 'primary', id: 'add-class', text: 'Add a class', onclick: () => this.addClass() }),
        el('button', { type: 'button', id: 'run-check', text: 'Check my images', onclick: () => this.check() }),
        el('span', { class: 'muted', text: 'Tip: drop images or whole folders on a class, or paste an image (Ctrl+V) to add it to the class you used last.' }),
        fileInput,
      ),
      this.findings,
      this.webcam.root,
      this.list,
      this.selBar,
    );
    this.onPaste = (e) => this.paste(e);
    document.addEventListener('paste', this.onPaste);
    // dropping on the page outside a card: folders become classes
    root.addEventListener('dragover', (e) => e.preventDefault());
    root.addEventListener('drop', (e) => {
      if (e.defaultPrevented) return;
      e.preventDefault();
      this.dropOnPage(e.dataTransfer);
    });
  }

  async load() {
    let r;
    try {
      const early = this.studio.prefetched;
      this.studio.prefetched = null;
      r = (early && (await early)) || (await api('/api/classes?images=1'));
    } catch (e) {
      return this.studio.fail(e);
    }
    this.classes = r.classes;
    const names = new Set(r.classes.map((c) => c.name));
    for (const [n, card] of this.cards) {
      if (!names.has(n)) {
        card.remove();
        this.grids.get(n)?.destroy();
        this.cards.delete(n);
        this.grids.delete(n);
      }
    }
    for (const ref of [...this.selected]) if (!names.has(ref.split('/')[0])) this.selected.delete(ref);
    if (!r.classes.length) {
      this.list.replaceChildren(el('div', { class: 'card empty-project' }, el('h2', { text: 'No classes yet' }), el('p', { text: 'A class is one kind of thing the model should tell apart (for example "cat" and "dog"). Add a class, then add pictures to it. You can also drop a folder of folders here: each folder becomes a class.' })));
    } else this.list.querySelector('.empty-project')?.remove();
    let prev = null;
    for (const c of r.classes) {
      let card = this.cards.get(c.name);
      if (!card) {
        card = this.makeCard(c.name);
        this.cards.set(c.name, card);
      }
      // keep the order of the class list
      if (prev ? prev.nextSibling !== card : this.list.firstChild !== card) {
        if (prev) prev.after(card);
        else this.list.prepend(card);
      }
      prev = card;
      card.querySelector('.count').textContent = plural(c.count, 'image');
    }
    for (const c of r.classes) {
      const g = this.grids.get(c.name);
      const keep = g.root.scrollTop;
      g.setImages(c.images);
      g.root.scrollTop = keep;
    }
    this.webcam.fillClasses(this.webcam.target.value || this.lastClass);
    this.updateSelection();
  }

  makeCard(name) {
    const host = {
      isSelected: (ref) => this.selected.has(ref),
      toggle: (ref) => {
        if (this.selected.has(ref)) this.selected.delete(ref);
        else this.selected.add(ref);
        this.lastClass = name;
        this.updateSelection();
      },
      remove: (refs) => this.remove(refs),
      open: (ref) => window.open(`/api/image?${qs({ i: ref })}`, '_blank', 'noopener'),
    };
    const grid = new ThumbGrid(name, host);
    this.grids.set(name, grid);
    const input = el('input', { type: 'file', multiple: true, accept: 'image/*', hidden: true });
    input.addEventListener('change', () => {
      this.upload(name, [...input.files]);
      input.value = '';
    });
    const folderInput = el('input', { type: 'file', multiple: true, hidden: true, webkitdirectory: true });
    folderInput.addEventListener('change', () => {
      this.upload(name, [...folderInput.files]);
      folderInput.value = '';
    });
    const title = el('h2', { class: 'class-name', text: name });
    const card = el(
      'article',
      { class: 'class-card', dataset: { class: name }, 'aria-label': `Class ${name}` },
      el('div', { class: 'class-head' }, title, el('span', { class: 'count' })),
      el(
        'div',
        { class: 'class-actions' },
        el('button', { type: 'button', class: 'small primary', text: 'Add images', 'aria-label': `Add images to ${name}`, onclick: () => input.click() }),
        el('button', { type: 'button', class: 'small', text: 'Add a folder', 'aria-label': `Add a folder of images to ${name}`, onclick: () => folderInput.click() }),
        el('button', { type: 'button', class: 'small', text: 'Webcam', 'aria-label': `Record ${name} with the webcam`, onclick: () => this.webcam.open(name) }),
        el('button', { type: 'button', class: 'small', text: 'Rename', 'aria-label': `Rename ${name}`, onclick: () => this.rename(name) }),
        el('button', { type: 'button', class: 'small', text: 'Merge', 'aria-label': `Merge ${name} into another class`, onclick: () => this.merge(name) }),
        el('button', { type: 'button', class: 'small danger', text: 'Delete', 'aria-label': `Delete ${name}`, onclick: () => this.deleteClass(name) }),
      ),
      grid.root,
      input,
      folderInput,
    );
    card.addEventListener('focusin', () => (this.lastClass = name));
    card.addEventListener('dragover', (e) => {
      e.preventDefault();
      card.classList.add('drop-target');
    });
    card.addEventListener('dragleave', () => card.classList.remove('drop-target'));
    card.addEventListener('drop', async (e) => {
      e.preventDefault();
      card.classList.remove('drop-target');
      this.lastClass = name;
      const items = [...(e.dataTransfer.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
      const files = items.length ? (await Promise.all(items.map((en) => entryFiles(en)))).flat() : [...e.dataTransfer.files];
      this.upload(name, files);
    });
    return card;
  }

  updateSelection() {
    for (const g of this.grids.values()) g.syncSelection();
    const n = this.selected.size;
    this.selBar.hidden = !n;
    if (!n) return this.selBar.replaceChildren();
    const to = el('select', { id: 'move-to', 'aria-label': 'Class to move the selected images to' }, this.classes.map((c) => el('option', { value: c.name, text: c.name })));
    this.selBar.replaceChildren(
      el('strong', { text: `${plural(n, 'image')} selected` }),
      el('button', { type: 'button', class: 'danger', id: 'remove-selected', text: 'Remove', onclick: () => this.remove([...this.selected]) }),
      el('label', { for: 'move-to', class: 'inline', text: 'Move to' }),
      to,
      el('button', { type: 'button', id: 'move-selected', text: 'Move', onclick: () => this.move([...this.selected], to.value) }),
      el('button', { type: 'button', text: 'Clear selection', onclick: () => { this.selected.clear(); this.updateSelection(); } }),
    );
  }

  async act(fn) {
    try {
      const r = await fn();
      if (r?.action) this.studio.say(`${r.action.title}. (Undo is at the top.)`);
      await this.studio.changed();
      return true;
    } catch (e) {
      this.studio.fail(e);
      return false;
    }
  }

  async addClass(suggested = '') {
    const name = await ask('Add a class', { label: 'Name of the class (what the pictures show)', value: suggested, okText: 'Add' });
    if (!name) return null;
    const ok = await this.act(() => api('/api/classes/add', { method: 'POST', json: { name } }));
    if (ok) {
      this.lastClass = name;
      this.cards.get(name)?.querySelector('button')?.focus();
    }
    return ok ? name : null;
  }

  async rename(name) {
    const to = await ask(`Rename '${name}'`, { label: 'New name', value: name, okText: 'Rename' });
    if (to && to !== name) await this.act(() => api('/api/classes/rename', { method: 'POST', json: { from: name, to } }));
  }

  async merge(name) {
    const others = this.classes.map((c) => c.name).filter((n) => n !== name);
    if (!others.length) return this.studio.say('there is no other class to merge into', true);
    const into = await ask(`Merge '${name}' into…`, { label: `All pictures of '${name}' move to this class, and '${name}' goes away`, choices: others, okText: 'Merge' });
    if (into) await this.act(() => api('/api/classes/merge', { method: 'POST', json: { from: name, into } }));
  }

  async deleteClass(name) {
    const c = this.classes.find((x) => x.name === name);
    if (!(await confirmDialog(`Delete '${name}'?`, `Its ${plural(c?.count ?? 0, 'picture')} go to the project's trash folder (.tlearn-trash); Undo brings them back.`, 'Delete'))) return;
    await this.act(() => api('/api/classes/delete', { method: 'POST', json: { name } }));
  }

  async remove(refs) {
    if (!refs.length) return false;
    const ok = await this.act(() => api('/api/images/remove', { method: 'POST', json: { images: refs } }));
    if (ok) for (const r of refs) this.selected.delete(r);
    this.updateSelection();
    return ok;
  }

  async move(refs, to) {
    const ok = await this.act(() => api('/api/images/move', { method: 'POST', json: { images: refs, to } }));
    if (ok) this.selected.clear();
    this.updateSelection();
  }

  /** Sends files to a class in batches; says what was added and what was refused (and why). */
  async upload(cls, files) {
    files = files.filter((f) => f && f.size > 0 && !f.name.startsWith('.'));
    if (!files.length) return this.studio.say('nothing to add (no files)', true);
    let added = 0;
    const refused = [];
    let batch = [];
    let bytes = 0;
    const send = async () => {
      if (!batch.length) return;
      const form = new FormData();
      for (const f of batch) form.append('file', f, f.name);
      batch = [];
      bytes = 0;
      const r = await api(`/api/images/add?${qs({ class: cls })}`, { method: 'POST', body: form });
      added += r.added.length;
      refused.push(...r.refused);
      this.studio.say(`Adding pictures to ${cls}: ${added} of ${files.length}`);
    };
    try {
      for (const f of files) {
        if (batch.length >= BATCH_FILES || bytes + f.size > BATCH_BYTES) await send();
        batch.push(f);
        bytes += f.size;
      }
      await send();
    } catch (e) {
      this.studio.fail(e);
    }
    const msg = `Added ${plural(added, 'picture')} to ${cls}.` + (refused.length ? ` Not added: ${refused.slice(0, 3).map((r) => `${r.name} (${r.reason})`).join('; ')}${refused.length > 3 ? ` and ${refused.length - 3} more` : ''}.` : '');
    // the cards show the new counts before the message says they were added
    await this.studio.changed();
    this.studio.say(msg, refused.length > 0 && added === 0);
  }

  async paste(e) {
    if (e.target.closest?.('input, textarea')) return;
    const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (!files.length) return;
    e.preventDefault();
    let cls = this.lastClass && this.classes.some((c) => c.name === this.lastClass) ? this.lastClass : null;
    if (!cls) cls = this.classes.length ? await ask('Paste into which class?', { choices: this.classes.map((c) => c.name), okText: 'Add' }) : await this.addClass();
    if (!cls) return;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    await this.upload(cls, files.map((f, i) => new File([f], f.name && f.name !== 'image.png' ? f.name : `pasted-${stamp}-${i + 1}.png`, { type: f.type })));
  }

  /** A drop outside the cards: each dropped folder becomes a class (or its sub-folders do); loose files ask for a class. */
  async dropOnPage(dt) {
    const entries = [...(dt.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
    const loose = entries.filter((e) => e.isFile);
    for (const dir of entries.filter((e) => e.isDirectory)) {
      const subs = await entrySubfolders(dir);
      const groups = subs.length ? subs : [dir];
      for (const g of groups) {
        const files = await entryFiles(g);
        if (!files.length) continue;
        if (!this.classes.some((c) => c.name === g.name)) {
          const ok = await this.act(() => api('/api/classes/add', { method: 'POST', json: { name: g.name } }));
          if (!ok) continue;
        }
        await this.upload(g.name, files);
      }
    }
    if (loose.length) {
      const cls = this.classes.length ? await ask('Add the pictures to which class?', { choices: this.classes.map((c) => c.name), okText: 'Add' }) : await this.addClass();
      if (cls) await this.upload(cls, await Promise.all(loose.map((e) => new Promise((res, rej) => e.file(res, rej)))));
    }
  }

  focusClass(name) {
    const card = this.cards.get(name);
    if (!card) return;
    card.scrollIntoView({ block: 'center' });
    card.querySelector('button')?.focus();
  }

  async check() {
    this.findings.hidden = false;
    this.findings.scrollIntoView({ block: 'nearest' });
    await showFindings(this.findings, this.studio, { remove: (refs) => this.remove(refs), focusClass: (n) => this.focusClass(n) });
  }
}
