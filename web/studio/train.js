// Placeholder for the Train page: the training engineer's module replaces this file (branch studio-train).
// A page module exports render(root, studio): root is <main>, studio has api(), say(), fail(), go(), changed().
import { el } from './dom.js';

export async function render(root, studio) {
  root.append(
    el('h1', { text: 'Train' }),
    el('p', { class: 'muted', text: 'This page is coming soon. Meanwhile you can train from a terminal: tlearn train "' + (studio.project?.root ?? 'your-folder') + '"' }),
  );
}
