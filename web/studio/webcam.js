// Recording from the webcam, as Teachable Machine does: hold the button (mouse, touch, or Space/Enter held down
// on the keyboard) and frames are taken at the chosen rate; they are sent to the class in small batches.
import { el } from './dom.js';

export class WebcamPanel {
  /**
   * @param {() => string[]} classes current class names
   * @param {(cls: string, files: File[]) => Promise<void>} upload
   * @param {(msg: string, isError?: boolean) => void} say
   */
  constructor(classes, upload, say) {
    this.classes = classes;
    this.upload = upload;
    this.say = say;
    this.stream = null;
    this.timer = 0;
    this.pending = [];
    this.sending = Promise.resolve();
    this.count = 0;
    this.video = el('video', { autoplay: true, muted: true, playsinline: true, id: 'webcam-video', 'aria-label': 'Webcam picture' });
    this.target = el('select', { id: 'webcam-class' });
    this.rate = el('select', { id: 'webcam-rate' }, [1, 2, 5, 10, 15].map((r) => el('option', { value: String(r), text: `${r} per second`, selected: r === 5 })));
    this.hold = el('button', { type: 'button', class: 'hold primary', id: 'webcam-hold', text: 'Hold to record' });
    this.counter = el('p', { class: 'muted', id: 'webcam-count', 'aria-live': 'polite', text: 'Hold the button (or hold Space) to record.' });
    this.close = el('button', { type: 'button', text: 'Close webcam', onclick: () => this.stop() });
    this.root = el(
      'section',
      { class: 'card webcam-card', id: 'webcam', hidden: true, 'aria-label': 'Webcam' },
      el('h2', { text: 'Webcam' }),
      el('div', { class: 'webcam' }, this.video, el('div', {}, el('label', { for: 'webcam-class', text: 'Add the pictures to' }), this.target, el('label', { for: 'webcam-rate', text: 'Pictures taken' }), this.rate, el('div', { class: 'row' }, this.hold, this.close), this.counter)),
    );
    const start = (e) => {
      e.preventDefault();
      this.startRecording();
    };
    const stop = () => this.stopRecording();
    this.hold.addEventListener('pointerdown', (e) => {
      this.hold.setPointerCapture?.(e.pointerId);
      start(e);
    });
    this.hold.addEventListener('pointerup', stop);
    this.hold.addEventListener('pointercancel', stop);
    this.hold.addEventListener('keydown', (e) => {
      if (e.key !== ' ' && e.key !== 'Enter') return;
      e.preventDefault();
      if (!e.repeat) this.startRecording();
    });
    this.hold.addEventListener('keyup', (e) => {
      if (e.key === ' ' || e.key === 'Enter') {
        e.preventDefault();
        stop();
      }
    });
    this.hold.addEventListener('blur', stop);
    this.hold.addEventListener('click', (e) => e.preventDefault());
  }

  fillClasses(selected) {
    const names = this.classes();
    this.target.replaceChildren(...names.map((n) => el('option', { value: n, text: n, selected: n === selected })));
  }

  async open(cls) {
    this.fillClasses(cls);
    this.root.hidden = false;
    if (!this.stream) {
      if (!navigator.mediaDevices?.getUserMedia) return this.say('this browser has no webcam access (it needs a page on localhost or https)', true);
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      } catch (e) {
        this.root.hidden = true;
        return this.say(`The webcam could not be opened (${e.name === 'NotAllowedError' ? 'permission refused: allow the camera in the browser' : e.message || e.name})`, true);
      }
      this.video.srcObject = this.stream;
    }
    this.root.scrollIntoView({ block: 'nearest' });
    this.hold.focus();
  }

  stop() {
    this.stopRecording();
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    this.video.srcObject = null;
    this.root.hidden = true;
  }

  startRecording() {
    if (this.timer || !this.stream) return;
    const cls = this.target.value;
    if (!cls) return this.say('make a class first', true);
    this.hold.classList.add('recording');
    this.hold.textContent = 'Recording… let go to stop';
    this.count = 0;
    // frames are named webcam-<date>-<time>-<n>.jpg (a clash with an existing name gets -2, -3…)
    const d = new Date();
    const two = (n) => String(n).padStart(2, '0');
    this.stamp = `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
    const every = 1000 / Number(this.rate.value);
    const snap = () => this.capture(cls);
    snap();
    this.timer = setInterval(snap, every);
  }

  stopRecording() {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = 0;
    this.hold.classList.remove('recording');
    this.hold.textContent = 'Hold to record';
    this.flush(this.target.value, true);
  }

  capture(cls) {
    const v = this.video;
    if (!v.videoWidth) return;
    const scale = Math.min(1, 640 / v.videoWidth);
    const c = document.createElement('canvas');
    c.width = Math.round(v.videoWidth * scale);
    c.height = Math.round(v.videoHeight * scale);
    c.getContext('2d').drawImage(v, 0, 0, c.width, c.height);
    const n = ++this.count;
    const stamp = this.stamp;
    c.toBlob((blob) => {
      if (!blob) return;
      this.pending.push(new File([blob], `webcam-${stamp}-${n}.jpg`, { type: 'image/jpeg' }));
      this.counter.textContent = `${n} picture${n > 1 ? 's' : ''} recorded for ${cls}`;
      if (this.pending.length >= 10) this.flush(cls);
    }, 'image/jpeg', 0.9);
  }

  flush(cls, last = false) {
    // toBlob is asynchronous: wait a moment for the last frames before sending them
    const go = () => {
      const files = this.pending.splice(0);
      if (!files.length) return;
      this.sending = this.sending.then(() => this.upload(cls, files)).catch((e) => this.say(e.message, true));
    };
    if (last) setTimeout(go, 300);
    else go();
  }
}
