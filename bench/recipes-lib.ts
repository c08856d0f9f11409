/**
 * The recipes `npm run bench:recipes` knows, how its command line is read, and how its rows are written into
 * ACCURACY.md. Pure functions (no training here), so they are tested on their own.
 */

export interface Recipe {
  name: string;
  /** `tlearn train` flags (the dataset, --seed and --out are added by the bench). */
  flags: string[];
  note: string;
}

const FT = ['--mode', 'finetune', '--augment'];

/** Named recipes. Phase 2 picks among them by validation accuracy only. */
export const RECIPES: Recipe[] = [
  { name: 'transfer', flags: [], note: 'frozen backbone + linear head on cached features (the default mode)' },
  { name: 'finetune', flags: FT, note: 'the current finetune default with augmentation: top 8 blocks, one-cycle, 10 epochs, BN frozen' },
  { name: 'finetune-bn-train', flags: [...FT, '--bn', 'train'], note: 'BatchNormalization of the unfrozen blocks in training mode (batch statistics per micro-batch of 32)' },
  { name: 'finetune-bn-train-m99', flags: [...FT, '--bn', 'train', '--bn-momentum', '0.99'], note: 'as finetune-bn-train with momentum 0.99 instead of MobileNetV2\'s 0.999' },
  { name: 'finetune-bn-train-reestimate', flags: [...FT, '--bn', 'train', '--bn-reestimate'], note: 'BN in training mode, then its moving statistics re-estimated on the training images (no momentum lag)' },
  { name: 'finetune-bn-reestimate', flags: [...FT, '--bn-reestimate'], note: 'BN frozen while training, statistics of the unfrozen blocks re-estimated on the training images after' },
  { name: 'finetune-ema', flags: [...FT, '--ema', '0.999'], note: 'exponential moving average of the weights' },
  { name: 'finetune-swa', flags: [...FT, '--swa', '3'], note: 'SWA of the last 3 epochs, kept if it validates better' },
  { name: 'finetune-mixup', flags: [...FT, '--mixup', '0.2'], note: 'mixup alpha 0.2' },
  { name: 'finetune-cutmix', flags: [...FT, '--cutmix', '1'], note: 'CutMix alpha 1' },
  { name: 'finetune-cosine-warmup', flags: [...FT, '--schedule', 'cosine', '--warmup', '1'], note: 'cosine schedule after 1 warm-up epoch, instead of one-cycle' },
  { name: 'finetune-progressive', flags: [...FT, '--progressive', '160'], note: 'progressive resizing: the first half of the epochs at 160x160' },
  { name: 'finetune-15ep-progressive', flags: [...FT, '--epochs', '15', '--progressive', '128,176'], note: '15 epochs, a third each at 128, 176 and 224' },
  { name: 'finetune-15ep', flags: [...FT, '--epochs', '15'], note: '15 epochs' },
  { name: 'finetune-unfreeze-all', flags: [...FT, '--unfreeze', 'all'], note: 'the whole backbone trained' },
  { name: 'finetune-unfreeze-all-bn-train', flags: [...FT, '--unfreeze', 'all', '--bn', 'train'], note: 'the whole backbone trained, BN in training mode' },
  { name: 'scratch', flags: ['--mode', 'scratch'], note: "the notebook's CNN, 10 epochs, no augmentation" },
  { name: 'scratch-augment', flags: ['--mode', 'scratch', '--augment'], note: "the notebook's CNN with augmentation, 10 epochs" },
  { name: 'scratch-augment-30ep', flags: ['--mode', 'scratch', '--augment', '--epochs', '30', '--schedule', 'cosine'], note: "the notebook's CNN with augmentation, 30 epochs, cosine" },
  { name: 'scratch-resnet-mini', flags: ['--mode', 'scratch', '--arch', 'resnet-mini', '--augment', '--schedule', 'cosine', '--warmup', '1'], note: 'resnet-mini with augmentation, 10 epochs, cosine after 1 warm-up epoch' },
  { name: 'scratch-resnet-mini-160', flags: ['--mode', 'scratch', '--arch', 'resnet-mini', '--input-size', '160', '--augment', '--schedule', 'cosine', '--warmup', '1'], note: 'resnet-mini at 160x160' },
];

export class RecipeArgError extends Error {}

export interface BenchDataset {
  name: string;
  /** Path relative to ../shared. */
  path: string;
  flags: string[];
}

export const DATASETS: BenchDataset[] = [
  { name: 'caltech97', path: 'datasets/caltech101/101_ObjectCategories', flags: ['--exclude', 'BACKGROUND_Google,Motorbikes,airplanes,Faces_easy,Faces'] },
  { name: 'antsbees', path: 'datasets/hymenoptera_data', flags: [] },
];

export interface BenchArgs {
  recipes: Recipe[];
  datasets: BenchDataset[];
  seeds: number[];
  /** Appended to every recipe's flags (e.g. "--epochs 1" for a smoke test; such rows say so). */
  extra: string[];
  file: string;
  list: boolean;
}

/**
 * Reads `npm run bench:recipes -- [names...] [--data caltech97,antsbees] [--seeds 42,1,2] [--extra "--epochs 1"]
 * [--file ACCURACY.md] [--list]`. A name may also be `name=flags` to define a recipe on the spot,
 * e.g. `ft-ls0='--mode finetune --augment --label-smoothing 0'`.
 */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const out: BenchArgs = { recipes: [], datasets: DATASETS, seeds: [42], extra: [], file: 'ACCURACY.md', list: false };
  const value = (i: number, flag: string) => {
    const v = argv[i + 1];
    if (v === undefined) throw new RecipeArgError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--list') out.list = true;
    else if (a === '--data') {
      const names = value(i++, a).split(',');
      out.datasets = names.map((n) => DATASETS.find((d) => d.name === n) ?? raise(`unknown dataset '${n}' (choose ${DATASETS.map((d) => d.name).join(', ')})`));
    } else if (a === '--seeds') {
      out.seeds = value(i++, a).split(',').map((s) => (/^\d+$/.test(s.trim()) ? Number(s) : raise(`--seeds takes comma-separated whole numbers, got '${s}'`)));
    } else if (a === '--extra') out.extra = value(i++, a).split(/\s+/).filter(Boolean);
    else if (a === '--file') out.file = value(i++, a);
    else if (a.startsWith('--')) raise(`unknown option ${a} (see the top of bench/recipes.ts)`);
    else if (a.includes('=')) {
      const [name, flags] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
      if (!/^[\w.-]+$/.test(name)) raise(`recipe names are letters, digits, '.', '_' and '-', got '${name}'`);
      out.recipes.push({ name, flags: flags.split(/\s+/).filter(Boolean), note: 'defined on the command line' });
    } else out.recipes.push(RECIPES.find((r) => r.name === a) ?? raise(`unknown recipe '${a}' (--list shows them; or define one as name='--flags ...')`));
  }
  if (!out.recipes.length && !out.list) raise('name at least one recipe (--list shows them)');
  return out;
}

function raise(msg: string): never {
  throw new RecipeArgError(msg);
}

export interface RecipeResult {
  date: string;
  dataset: string;
  recipe: Recipe;
  extra: string[];
  seed: number;
  valAcc: number;
  testAcc: number;
  testEce: number;
  secondsPerEpoch: number;
  wallSeconds: number;
  peakRssMB: number | null;
}

export const TABLE_HEADER = [
  '| date | dataset | recipe | flags | seed | val acc | test acc | test ECE | s/epoch | wall | peak RSS |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
];

export function tableRow(r: RecipeResult): string {
  const flags = [...r.recipe.flags, ...r.extra].join(' ') || '(defaults)';
  const extra = r.extra.length ? ' (smoke test: not a result)' : '';
  return `| ${r.date} | ${r.dataset} | ${r.recipe.name}${extra} | \`${flags}\` | ${r.seed} | ${r.valAcc.toFixed(4)} | ${r.testAcc.toFixed(4)} | ${r.testEce.toFixed(4)} | ${r.secondsPerEpoch.toFixed(1)} | ${r.wallSeconds.toFixed(0)} s | ${r.peakRssMB === null ? '?' : `${r.peakRssMB.toFixed(0)} MB`} |`;
}

const START = '<!-- recipes:start -->';
const END = '<!-- recipes:end -->';

/** ACCURACY.md with the rows appended to its recipes table (created, with the header, when absent). */
export function appendRows(markdown: string | undefined, rows: string[], preamble: string): string {
  const base = markdown && markdown.includes(START) && markdown.includes(END) ? markdown : `${(markdown ?? preamble).trimEnd()}\n\n${START}\n${TABLE_HEADER.join('\n')}\n${END}\n`;
  const at = base.indexOf(END);
  return `${base.slice(0, at)}${rows.map((r) => `${r}\n`).join('')}${base.slice(at)}`;
}

/** Mean and sample standard deviation. */
export function meanSd(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

/** Seconds per epoch of the trained stage from a run's metrics.json (fine-tuning: the second stage). */
export function secondsPerEpoch(metrics: any): number {
  const list: number[] = metrics.training?.secondsPerEpoch ?? [];
  if (list.length) return list.reduce((a, b) => a + b, 0) / list.length;
  return metrics.timings?.train && metrics.training?.epochsRun ? metrics.timings.train / metrics.training.epochsRun : NaN;
}
