// A virtualised thumbnail grid: however many images a class has, only the rows in view (and one more above and
// below) exist in the page, so 10,000 images scroll as smoothly as 10. Each thumbnail is a toggle button (Space or
// Enter selects it); the arrow keys move between thumbnails, Home/End jump to the first and last, Delete removes.
import { el } from './dom.js';

const CELL = 84; // px, thumbnail + gap
const GAP = 4;

export class ThumbGrid {
  /**
   * @param {string} cls the class name (images are file names in it)
   * @param {{isSelected(ref): boolean, toggle(ref, on?): void, remove(refs): void, open(ref): void}} host
   */
  constructor(cls, host) {
    this.cls = cls;
    this.host = host;
    this.images = [];
    this.nodes = new Map(); // index → button
    this.cols = 1;
    this.root = el('div', { class: 'grid', role: 'group', 'aria-label': `Images of ${cls}`, tabindex: '-1' });
    this.inner = el('div', { class: 'grid-inner' });
    this.root.append(this.inner);
    this.root.addEventListener(
      'scroll',
      () => {
        this.scrolling = true;
        this.schedule();
      },
      { passive: true },
    );
    this.root.addEventListener('keydown', (e) => this.onKey(e));
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.root);
  }

  ref(i) {
    return `${this.cls}/${this.images[i]}`;
  }

  setImages(images) {
    this.images = images;
    for (const n of this.nodes.values()) n.remove();
    this.nodes.clear();
    this.root.classList.toggle('empty', !images.length);
    if (!images.length) {
      this.inner.style.height = '';
      this.inner.textContent = 'No images yet: drop some here, choose files, or use the webcam.';
      return;
    }
    if (this.inner.firstChild && this.inner.firstChild.nodeType === 3) this.inner.textContent = '';
    this.layout();
  }

  layout() {
    const w = this.root.clientWidth - GAP;
    this.cols = Math.max(1, Math.floor(w / CELL));
    const rows = Math.ceil(this.images.length / this.cols);
    if (this.images.length) this.inner.style.height = `${rows * CELL + GAP}px`;
    for (const n of this.nodes.values()) n.remove();
    this.nodes.clear();
    this.draw();
  }

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  /** The indexes of the rows in view, plus one row either side. */
  visibleRange() {
    const top = this.root.scrollTop;
    const h = this.root.clientHeight || 260;
    const first = Math.max(0, Math.floor(top / CELL) - 1);
    const last = Math.min(Math.ceil(this.images.length / this.cols) - 1, Math.ceil((top + h) / CELL) + 1);
    return [first * this.cols, Math.min(this.images.length, (last + 1) * this.cols)];
  }

  draw() {
    if (!this.images.length) return;
    const [from, to] = this.visibleRange();
    for (const [i, n] of this.nodes) {
      if (i < from || i >= to) {
        if (n.contains(document.activeElement)) continue; // keep the focused one
        n.firstChild.removeAttribute('src'); // stops a download still under way
        n.remove();
        this.nodes.delete(i);
      }
    }
    const size = CELL - GAP;
    for (let i = from; i < to; i++) {
      if (this.nodes.has(i)) continue;
      const name = this.images[i];
      const ref = this.ref(i);
      const b = el('button', { type: 'button', class: 'thumb', 'aria-pressed': String(this.host.isSelected(ref)), 'aria-label': name, title: name, dataset: { index: String(i) } });
      b.style.left = `${GAP + (i % this.cols) * CELL}px`;
      b.style.top = `${GAP + Math.floor(i / this.cols) * CELL}px`;
      b.style.width = b.style.height = `${size}px`;
      const im = el('img', { alt: '', decoding: 'async', draggable: false });
      // the picture is asked for once scrolling pauses: a fast scroll through thousands of rows asks for none of
      // the rows it only passes
      im.dataset.src = `/api/thumb?i=${encodeURIComponent(ref)}`;
      b.append(im);
      b.addEventListener('click', (e) => {
        this.host.toggle(ref);
        b.setAttribute('aria-pressed', String(this.host.isSelected(ref)));
        if (e.detail === 2) this.host.open(ref);
      });
      this.inner.append(b);
      this.nodes.set(i, b);
    }
    clearTimeout(this.loadTimer);
    if (this.scrolling) this.loadTimer = setTimeout(() => this.loadVisible(), 80);
    else this.loadVisible();
  }

  /** Sets the picture of every thumbnail in the page that has none yet. */
  loadVisible() {
    this.scrolling = false;
    for (const n of this.nodes.values()) {
      const im = n.firstChild;
      if (im.dataset.src) {
        im.src = im.dataset.src;
        delete im.dataset.src;
      }
    }
  }

  /** Updates the pressed state of the buttons in view (after select all / clear). */
  syncSelection() {
    for (const [i, n] of this.nodes) n.setAttribute('aria-pressed', String(this.host.isSelected(this.ref(i))));
  }

  focusIndex(i) {
    i = Math.max(0, Math.min(this.images.length - 1, i));
    const rowTop = Math.floor(i / this.cols) * CELL;
    if (rowTop < this.root.scrollTop) this.root.scrollTop = rowTop;
    else if (rowTop + CELL > this.root.scrollTop + this.root.clientHeight) this.root.scrollTop = rowTop + CELL - this.root.clientHeight + GAP;
    this.draw();
    this.nodes.get(i)?.focus();
  }

  onKey(e) {
    const b = e.target.closest?.('.thumb');
    if (!b) return;
    const i = Number(b.dataset.index);
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.cols, ArrowUp: -this.cols };
    if (e.key in moves) {
      e.preventDefault();
      this.focusIndex(i + moves[e.key]);
    } else if (e.key === 'Home') {
      e.preventDefault();
      this.focusIndex(0);
    } else if (e.key === 'End') {
      e.preventDefault();
      this.focusIndex(this.images.length - 1);
    } else if (e.key === 'Delete' || e.key === 'Backspace') {
      e.preventDefault();
      this.host.remove([this.ref(i)]);
    }
  }

  destroy() {
    this.resize.disconnect();
  }
}
