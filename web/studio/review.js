// The Review page: how good a finished training is on photos it never learned from, per class, where it gets
// confused (the confusion matrix: a click or Enter on a cell shows its photos), its biggest mistakes, and the
// photos whose label may be wrong. Photos can be moved to another class, kept as labelled, or deleted, one or
// many at a time, through the studio's file actions (each one can be undone).
import { api, qs } from './api.js';
import { el, plural, confirmDialog } from './dom.js';
import { ensureCss } from './train.js';

const pct = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(v > 0.999 || v < 0.001 ? 0 : 1)}%`);
const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const thumb = (ref) => `/api/thumb?${qs({ i: ref })}`;

export function leave() {}

/** Shade 0-4 of a confusion cell: its share of the row. */
function shade(n, rowTotal) {
  if (!n || !rowTotal) return 0;
  const f = n / rowTotal;
  return f >= 0.75 ? 4 : f >= 0.4 ? 3 : f >= 0.15 ? 2 : 1;
}

export async function render(root, studio) {
  ensureCss('train.css');
  root.append(el('h1', { text: 'Review' }));
  const { runs } = await api('/api/train/runs');
  const done = runs.filter((r) => r.status === 'done');
  if (!done.length) {
    root.append(el('div', { class: 'card' }, el('p', { text: 'There is nothing to review yet: a training has to finish first.' }), el('a', { class: 'button primary', href: '#train', text: 'Go to Train' })));
    return;
  }
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  let runId = done.some((r) => r.id === params.get('run')) ? params.get('run') : done[0].id;
  const picker = el('select', { id: 'review-run' }, done.map((r) => el('option', { value: r.id, selected: r.id === runId, text: `${when(r.startedAt)} · ${pct(r.testAccuracy)} right` })));
  picker.addEventListener('change', () => {
    runId = picker.value;
    history.replaceState(null, '', `#review?run=${encodeURIComponent(runId)}`);
    load();
  });
  const body = el('div', { id: 'review-body' });
  root.append(el('div', { class: 'review-top' }, el('div', {}, el('label', { for: 'review-run', text: 'Training' }), picker)), body);

  let data = null;
  let classes = [];

  async function load(keepScroll = false) {
    const y = window.scrollY;
    try {
      data = await api(`/api/runs/${encodeURIComponent(runId)}/review`);
    } catch (e) {
      body.replaceChildren(el('p', { class: 'error', text: e.message }));
      return;
    }
    try {
      classes = (await api('/api/classes')).classes?.map((c) => c.name ?? c) ?? data.classes;
    } catch {
      classes = data.classes;
    }
    draw();
    if (keepScroll) window.scrollTo(0, y);
  }

  // ---- photo galleries with actions ----
  /** A gallery of photos ([{path, given, predicted, confidence, note}]) with select-and-act controls. */
  function gallery(id, items, empty) {
    const selected = new Set();
    const grid = el('div', { class: 'gallery', id: `${id}-grid` });
    const count = el('span', { class: 'muted', 'aria-live': 'polite' });
    const moveTo = el('select', { 'aria-label': 'Class to move the chosen photos to' }, classes.map((c) => el('option', { value: c, text: c })));
    const buttons = [];
    const act = (text, cls, fn) => {
      const b = el('button', { type: 'button', class: `small ${cls}`, text, disabled: true, onclick: () => fn([...selected]) });
      buttons.push(b);
      return b;
    };
    const update = () => {
      count.textContent = selected.size ? `${plural(selected.size, 'photo')} chosen` : 'Choose photos with their tick boxes';
      for (const b of buttons) b.disabled = !selected.size;
    };
    const present = items.filter((i) => i.exists !== false);
    grid.append(
      ...items.map((it, index) => {
        const box = el('input', { type: 'checkbox', class: 'pick', 'aria-label': `Choose ${it.path}`, disabled: it.exists === false });
        const card = el(
          'figure',
          { class: 'shot', dataset: { path: it.path } },
          it.exists === false ? el('div', { class: 'gone', text: 'moved or deleted since this training' }) : el('img', { loading: index >= 24 ? 'lazy' : undefined, src: thumb(it.path), alt: `${it.path}` }),
          box,
          el(
            'figcaption',
            { class: 'cap' },
            el('span', {}, 'labelled ', el('strong', { class: 'given', text: it.given })),
            it.line2 ?? el('span', {}, 'model says ', el('strong', { class: 'suggested', text: it.predicted }), ` (${pct(it.confidence)} sure)`),
            it.note ? el('span', { class: 'name', text: it.note }) : null,
            el('span', { class: 'name', text: it.path }),
          ),
        );
        box.addEventListener('change', () => {
          if (box.checked) selected.add(it.path);
          else selected.delete(it.path);
          card.classList.toggle('selected', box.checked);
          update();
        });
        return card;
      }),
    );
    const selectAll = el('button', {
      type: 'button',
      class: 'small',
      text: 'Choose all',
      disabled: !present.length,
      onclick: () => {
        for (const box of grid.querySelectorAll('.shot:not([hidden]) input.pick:not(:disabled)')) {
          box.checked = true;
          box.dispatchEvent(new Event('change'));
        }
      },
    });
    const bar = el(
      'div',
      { class: 'bulk', role: 'group', 'aria-label': 'Actions on the chosen photos' },
      count,
      selectAll,
      el('span', { class: 'muted', text: '·' }),
      moveTo,
      act('Move to this class', 'primary', (refs) => fileAction('move', refs, moveTo.value)),
      act('Keep as labelled', '', (refs) => keep(refs)),
      act('Delete', 'danger', (refs) => fileAction('remove', refs)),
    );
    update();
    if (!items.length) return el('p', { class: 'muted', id: `${id}-grid`, text: empty });
    // a long list shows its first photos, and the rest on request
    const LIMIT = 24;
    const cards = [...grid.children];
    let more = null;
    if (cards.length > LIMIT) {
      for (const c of cards.slice(LIMIT)) c.hidden = true;
      more = el('button', {
        type: 'button',
        class: 'small',
        text: `Show all ${cards.length} photos`,
        onclick: () => {
          for (const c of cards) c.hidden = false;
          more.remove();
        },
      });
    }
    return el('div', { id }, bar, grid, more ? el('div', { class: 'row' }, more) : null);
  }

  async function fileAction(kind, refs, to) {
    try {
      if (kind === 'remove' && !(await confirmDialog('Delete photos?', `${plural(refs.length, 'photo')} will go to the project's trash. Undo brings them back.`, 'Delete'))) return;
      const r = await api(`/api/images/${kind}`, { method: 'POST', json: kind === 'move' ? { images: refs, to } : { images: refs } });
      lastAction = r.action;
      undoButton.hidden = false;
      undoButton.textContent = `Undo: ${r.action?.title ?? (kind === 'move' ? 'move' : 'delete')}`;
      studio.say(`${kind === 'move' ? `Moved ${plural(refs.length, 'photo')} to '${to}'` : `Deleted ${plural(refs.length, 'photo')}`}. Train again to see the effect.`);
      await studio.changed();
      await load(true);
    } catch (e) {
      studio.fail(e);
    }
  }
  async function keep(refs) {
    try {
      await api('/api/review/keep', { method: 'POST', json: { images: refs } });
      studio.say(`${plural(refs.length, 'photo')} kept as labelled; they will not be flagged again.`);
      await load(true);
    } catch (e) {
      studio.fail(e);
    }
  }
  let lastAction = null;
  const undoButton = el('button', { type: 'button', id: 'review-undo', hidden: true, text: 'Undo' });
  undoButton.addEventListener('click', async () => {
    if (!lastAction) return;
    try {
      await api('/api/actions/undo', { method: 'POST', json: { id: lastAction.id } });
      studio.say(`Undone: ${lastAction.title ?? 'the last change'}`);
      lastAction = null;
      undoButton.hidden = true;
      await studio.changed();
      await load(true);
    } catch (e) {
      studio.fail(e);
    }
  });

  // ---- the page ----
  let cell = null;
  function draw() {
    const d = data;
    const byRef = d.predictions;
    const metric = (id, title, v, what) => el('div', { class: 'metric', id }, el('div', { class: 'what', text: title }), el('div', { class: 'big-number', text: pct(v) }), el('div', { class: 'what', text: what }));
    const summary = el(
      'section',
      { class: 'card', 'aria-labelledby': 'rv-summary' },
      el('h2', { id: 'rv-summary', text: 'How good is it?' }),
      el(
        'div',
        { class: 'metrics-row' },
        metric('rv-test', 'Test photos right', d.test.accuracy, `${plural(d.test.images, 'photo')} kept aside until the end: the honest score`),
        metric('rv-val', 'Validation photos right', d.val.accuracy, `${plural(d.val.images, 'photo')} held back to check the model while it learned`),
        metric('rv-balanced', 'Average over classes', d.test.balancedAccuracy, 'test score with every class counting the same, however many photos it has'),
      ),
      el('div', { class: 'row' }, undoButton),
    );

    const perClass = el(
      'section',
      { class: 'card', 'aria-labelledby': 'rv-classes' },
      el('h2', { id: 'rv-classes', text: 'Each class (test photos)' }),
      el('p', { class: 'hint', text: '"Found": of the photos really in the class, the share the model put there. "Right when it says so": of the photos it put in the class, the share that belong there.' }),
      el(
        'div',
        { class: 'table-wrap' },
        el(
          'table',
          { class: 'per-class', id: 'rv-per-class' },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Class' }), el('th', { scope: 'col', class: 'num', text: 'Test photos' }), el('th', { scope: 'col', class: 'num', text: 'Found' }), el('th', { scope: 'col', class: 'num', text: 'Right when it says so' }))),
          el('tbody', {}, d.test.perClass.map((c) => el('tr', {}, el('th', { scope: 'row', text: c.name }), el('td', { class: 'num', text: String(c.support) }), el('td', { class: 'num', text: pct(c.recall) }), el('td', { class: 'num', text: c.predicted ? pct(c.precision) : '–' })))),
        ),
      ),
    );

    // confusion matrix: rows are the real class, columns what the model said
    const cellPhotos = el('div', { id: 'rv-cell-photos', 'aria-live': 'polite' });
    const cm = d.test.confusion;
    const showCell = (t, p, btn) => {
      for (const b of matrix.querySelectorAll('button[aria-pressed]')) b.setAttribute('aria-pressed', 'false');
      btn.setAttribute('aria-pressed', 'true');
      cell = [t, p];
      const items = byRef.filter((x) => x.true === d.classes[t] && x.predicted === d.classes[p]).map((x) => ({ path: x.path, given: x.true, predicted: x.predicted, confidence: x.probability, exists: x.exists }));
      cellPhotos.replaceChildren(el('h3', { id: 'rv-cell-title', tabindex: '-1', text: `${t === p ? 'Right' : 'Mistaken'}: ${plural(items.length, 'photo')} of '${d.classes[t]}' the model called '${d.classes[p]}'` }), gallery('rv-cell', items, 'No photos here.'));
    };
    const matrix = el(
      'table',
      { class: 'confusion', id: 'rv-confusion' },
      el('thead', {}, el('tr', {}, el('th', { class: 'corner', scope: 'col', text: 'is ↓ · said →' }), d.classes.map((c) => el('th', { scope: 'col', text: c })))),
      el(
        'tbody',
        {},
        d.classes.map((c, t) => {
          const total = cm[t].reduce((a, b) => a + b, 0);
          return el(
            'tr',
            {},
            el('th', { scope: 'row', text: c }),
            cm[t].map((n, p) => {
              const b = el('button', { type: 'button', text: String(n), 'aria-pressed': 'false', 'aria-label': `${plural(n, 'photo')} of '${c}' the model called '${d.classes[p]}'`, dataset: { t: String(t), p: String(p) } });
              b.addEventListener('click', () => showCell(t, p, b));
              return el('td', { class: `cell-${shade(n, total)}${t === p ? ' diag' : ''}` }, b);
            }),
          );
        }),
      ),
    );
    const confusion = el('section', { class: 'card', 'aria-labelledby': 'rv-confusion-title' }, el('h2', { id: 'rv-confusion-title', text: 'Where it gets confused' }), el('p', { class: 'hint', text: 'Rows: the class a photo is in. Columns: what the model said. Green: right; orange: mistakes. Press a number to see its photos.' }), el('div', { class: 'table-wrap' }, matrix), cellPhotos);

    const top = d.topLoss.map((i) => byRef[i]).filter((x) => x.true !== x.predicted);
    const mistakes = el(
      'section',
      { class: 'card', 'aria-labelledby': 'rv-mistakes' },
      el('h2', { id: 'rv-mistakes', text: 'Its biggest mistakes' }),
      el('p', { class: 'hint', text: 'Test photos the model got wrong while being most sure. Often the label is what is wrong, or the photo is unclear.' }),
      gallery(
        'rv-top',
        top.map((x) => ({ path: x.path, given: x.true, predicted: x.predicted, confidence: x.probability, exists: x.exists })),
        'No mistakes on the test photos.',
      ),
    );

    const issues = el('section', { class: 'card', id: 'rv-issues', 'aria-labelledby': 'rv-issues-title' }, el('h2', { id: 'rv-issues-title', text: 'Possible label issues' }), el('p', { class: 'muted', text: 'Looking for photos whose label may be wrong… (a few seconds, or a minute or two for thousands of photos)' }));
    body.replaceChildren(summary, perClass, confusion, mistakes, issues);
    if (cell) {
      const b = matrix.querySelector(`button[data-t="${cell[0]}"][data-p="${cell[1]}"]`);
      if (b) showCell(cell[0], cell[1], b);
    }
    loadIssues(issues);
  }

  async function loadIssues(section) {
    let r;
    try {
      r = await api(`/api/runs/${encodeURIComponent(runId)}/label-issues`);
    } catch (e) {
      section.replaceChildren(section.firstChild, el('p', { class: 'error', text: e.message }));
      return;
    }
    const line2 = (x) => {
      if (x.kind === 'duplicate') return el('span', {}, 'looks the same as a photo in ', el('strong', { class: 'suggested', text: x.suggested || (x.twin || '').split('/')[0] || 'another class' }), x.twin ? el('span', { class: 'name', text: ` (${x.twin.split('/').pop()})` }) : null);
      if (x.kind === 'outlier') return el('span', {}, 'unlike the other photos of its class', x.suggested ? [' · closest: ', el('strong', { class: 'suggested', text: x.suggested })] : []);
      return el('span', {}, 'suggested ', el('strong', { class: 'suggested', text: x.suggested }), ` · the model's confidence in its label: ${pct(x.score)}`);
    };
    const items = r.issues.map((x) => ({ path: x.path, given: x.given, predicted: x.suggested, confidence: x.score, line2: line2(x) }));
    section.replaceChildren(
      section.firstChild,
      el('p', { class: 'hint', text: `Photos where models trained without them strongly prefer another class (or that look like a photo of another class, or unlike the rest of their class). Check each: move it to the right class, keep it as labelled (it will not be flagged again), or delete it.${r.hidden ? ` ${plural(r.hidden, 'photo')} already kept, moved or deleted ${r.hidden === 1 ? 'is' : 'are'} not shown.` : ''}` }),
      gallery('rv-issues-list', items, `No likely label issues among the ${plural(r.checked ?? 0, 'photo')} checked.`),
    );
  }

  await load();
}
