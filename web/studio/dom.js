// Small DOM helpers. Text always goes in as text (textContent), never as HTML: class and file names come from
// the user's folders and must never run as code.
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

export const plural = (n, w, ws = `${w}s`) => `${n.toLocaleString()} ${n === 1 ? w : ws}`;

/** A small dialog asking for one line of text; resolves to the text or null. Keyboard: Enter, Escape. */
export function ask(title, { label = '', value = '', okText = 'OK', choices } = {}) {
  return new Promise((resolve) => {
    const input = choices
      ? el('select', { id: 'ask-input' }, choices.map((c) => el('option', { value: c, text: c })))
      : el('input', { id: 'ask-input', type: 'text', value, autocomplete: 'off' });
    const dlg = el(
      'dialog',
      { class: 'ask' },
      el('form', { method: 'dialog' }, el('h2', { text: title }), el('label', { for: 'ask-input', text: label }), input, el('div', { class: 'row' }, el('button', { type: 'button', text: 'Cancel', onclick: () => dlg.close('cancel') }), el('button', { value: 'ok', type: 'submit', class: 'primary', text: okText }))),
    );
    // Enter in the text field submits with the OK button (Cancel is not a submit button)
    dlg.addEventListener('close', () => {
      const v = dlg.returnValue === 'ok' ? input.value.trim() : null;
      dlg.remove();
      resolve(v || null);
    });
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
    if (input.select) input.select();
  });
}

/** Yes/no question; resolves true for yes. */
export function confirmDialog(title, text, yes = 'Yes') {
  return new Promise((resolve) => {
    const dlg = el('dialog', { class: 'ask' }, el('form', { method: 'dialog' }, el('h2', { text: title }), el('p', { text }), el('div', { class: 'row' }, el('button', { type: 'button', text: 'Cancel', onclick: () => dlg.close('no') }), el('button', { value: 'yes', class: 'primary', text: yes }))));
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(dlg.returnValue === 'yes');
    });
    document.body.append(dlg);
    dlg.showModal();
  });
}
