// The `tlearn check` findings on the Data page: what is wrong with the images, each with its pictures and the
// action that fixes it (remove a copy, remove small or unreadable files, add images to a small class).
import { api } from './api.js';
import { el, plural } from './dom.js';

const thumbUrl = (ref) => `/api/thumb?i=${encodeURIComponent(ref)}`;
const isImageRef = (ref) => ref.split('/').length === 2;

function figure(ref, note, action) {
  return el('figure', {}, isImageRef(ref) ? el('img', { src: thumbUrl(ref), alt: '', loading: 'lazy' }) : null, el('figcaption', { text: ref }), note ? el('figcaption', { class: 'muted', text: note }) : null, action || null);
}

/** Runs the check and renders it into `box`; `remove(refs)` and `focusClass(name)` come from the Data page. */
export async function showFindings(box, studio, { remove, focusClass }) {
  box.replaceChildren(el('p', { class: 'muted', text: 'Checking every image (reading each one once)…' }));
  let f;
  try {
    f = await api('/api/check', { method: 'POST', json: {} });
  } catch (e) {
    box.replaceChildren(el('p', { class: 'error', text: e.message }));
    return;
  }
  const removeButton = (refs, text = 'Remove') =>
    el('button', {
      type: 'button',
      class: 'small danger',
      text,
      onclick: async (ev) => {
        ev.target.disabled = true;
        if (await remove(refs)) ev.target.textContent = 'Removed';
        else ev.target.disabled = false;
      },
    });
  const out = [el('h2', { text: 'What the check found' })];
  out.push(
    el('p', { class: f.trainable ? 'ok' : 'error', text: f.trainable ? `Ready to train: ${plural(f.usable, 'usable image')} in ${plural(f.classes.length, 'class', 'classes')} (checked in ${f.seconds.toFixed(1)} s).` : `Not ready to train yet: ${f.error}` }),
  );
  let problems = 0;
  const SHOWN = 20;
  const section = (title, why, items) => {
    if (!items.length) return;
    problems += items.length;
    const more = items.length > SHOWN ? el('p', { class: 'muted', text: `…and ${items.length - SHOWN} more like these (fix the ones above and check again).` }) : null;
    out.push(el('section', { class: 'finding-group' }, el('h3', { text: `${title} (${items.length})` }), el('p', { class: 'muted', text: why }), el('div', { class: 'finding-list' }, ...items.slice(0, SHOWN)), more));
  };
  section(
    'The same picture in different classes',
    'These files are identical but have different labels, so the model is told two different answers for one picture. Keep the copy in the right class and remove the others.',
    f.conflicts.map((g) => el('div', { class: 'finding' }, el('div', { class: 'finding-images' }, g.images.map((r) => figure(r, null, removeButton([r], 'Remove this copy')))))),
  );
  section(
    'Very similar pictures in different classes or splits',
    'Nearly the same picture with two labels confuses training; nearly the same picture in training and in the test makes the test score look better than it is. Remove one of each pair if they are really the same shot.',
    [...f.near].sort((a, b) => b.classes.length - a.classes.length).map((n) => el('div', { class: 'finding' }, el('div', { class: 'finding-images' }, n.images.map((r) => figure(r, null, removeButton([r])))), el('p', { class: 'muted', text: n.classes.length > 1 ? `different classes: ${n.classes.join(' and ')}` : `same class, but one is used for ${n.splits.join(' and the other for ')}` }))),
  );
  section(
    'The same picture twice in one class',
    'Extra copies count twice in training and can end up in both the training and the test images.',
    f.duplicates.map((g) => el('div', { class: 'finding' }, el('div', { class: 'finding-images' }, g.images.map((r) => figure(r))), removeButton(g.images.slice(1), `Remove ${plural(g.images.length - 1, 'extra copy', 'extra copies')}`))),
  );
  if (f.small.length) {
    section(
      `Small pictures (under ${f.inputSize?.join(' × ') ?? '224 × 224'} pixels)`,
      'The model looks at pictures of this size; smaller ones are blown up and look blurry to it. Remove them if bigger ones can replace them.',
      [el('div', { class: 'finding' }, el('div', { class: 'finding-images' }, f.small.slice(0, 60).map((s) => figure(s.image, `${s.width} × ${s.height}`, removeButton([s.image])))), f.small.length > 1 ? removeButton(f.small.map((s) => s.image), `Remove all ${f.small.length} small pictures`) : null)],
    );
  }
  section(
    'Files that training skips',
    'These are not used. Pictures the studio cannot read can be removed; other files are simply left alone.',
    f.skipped.map((s) => el('div', { class: 'finding' }, figure(s.ref ?? s.image, s.reason, isImageRef(s.image) ? removeButton([s.image]) : null))),
  );
  const im = f.imbalance;
  if (im && im.ratio >= 3 && f.classes.length > 1) {
    section('Some classes have far fewer pictures', `'${im.largest.name}' has ${im.largest.images} pictures and '${im.smallest.name}' only ${im.smallest.images}. The model will lean towards the big classes: add pictures to the small one.`, [
      el('div', { class: 'finding' }, el('button', { type: 'button', class: 'small', text: `Add pictures to '${im.smallest.name}'`, onclick: () => focusClass(im.smallest.name) })),
    ]);
  }
  if (!problems) out.push(el('p', { class: 'ok', text: 'Nothing else to fix.' }));
  box.replaceChildren(...out);
}
