/**
 * A bounded training epoch on Caltech-97 images for profiling (issue 21):
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-epoch.ts [--images 512] [--epochs 2] [--plain] [--finetune]
 * Trains the notebook CNN at 224x224 (batch 128, micro-batch 8), or with --finetune MobileNetV2-0.35's top 8
 * blocks + a new head (batch 32, as the epochs benchmark), with the default augmentation (or none with --plain),
 * and prints each epoch's seconds and this process's CPU seconds.
 */
import { loadImageFolder } from '../src/data/discover.js';
import { trainNetwork } from '../src/engine/network.js';
import { augmentFunction, DEFAULT_AUGMENT } from '../src/image/augment.js';
import { Rng } from '../src/util/rng.js';
import type { Logger } from '../src/util/log.js';
import { CALTECH, EXCLUDE } from './common.js';
import { epochSetups } from './training.js';

const argv = process.argv.slice(2);
const flag = (n: string, d: number) => (argv.includes(n) ? Number(argv[argv.indexOf(n) + 1]) : d);
const images = flag('--images', 512);
const epochs = flag('--epochs', 2);
const plain = argv.includes('--plain');
const finetune = argv.includes('--finetune');
const ds = await loadImageFolder(CALTECH, { exclude: EXCLUDE.split(',') });
const shuffled = new Rng(3).shuffle(ds.images.map((i) => i));
const train = shuffled.slice(0, images);
const val = shuffled.slice(images, images + Math.round((images * 931) / 4348));
const src = (l: typeof train) => ({ paths: l.map((i) => i.path), labels: l.map((i) => i.label) });
const decode = { width: 224, height: 224, resize: 'squash' as const };
let last = process.cpuUsage();
const logger: Logger = {
  info: (m) => {
    if (!/Epoch \d+\/\d+/.test(m)) return;
    const c = process.cpuUsage(last);
    last = process.cpuUsage();
    process.stderr.write(`${m} (${((c.user + c.system) / 1e6).toFixed(1)} CPU s)\n`);
  },
  warn: () => {},
  progress: () => ({ tick: () => {}, done: () => {} }),
};
const setup = (await epochSetups())[finetune ? 'finetune' : 'scratch'];
const m = await setup.model();
last = process.cpuUsage();
const net = await trainNetwork(m, src(train), src(val), {
  ...setup.opts,
  epochs,
  logger,
  trainAugment: plain ? undefined : (e, [height, width]) => augmentFunction({ ...decode, width, height }, DEFAULT_AUGMENT, 1, e),
});
await net.close();
