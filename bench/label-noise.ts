/**
 * Planted label noise for `tlearn check --labels` (issue 19, ACCURACY.md). Two commands:
 *
 *   tsx bench/label-noise.ts plant --src <dataset> --dest <new folder> --rate 0.05 [--pairs a:b,c:d] [--exclude x,y]
 *        [--seed 7] [--split-from <split.json>]
 *     copies the dataset (hard links where the file system allows, else copies; the source is never written) and
 *     moves a seeded share of the images to another class: a uniformly random other class, or with --pairs to the
 *     other class of its pair (asymmetric noise; the share is of all images, drawn from the pairs' classes).
 *     With --split-from (a clean run's split.json), the copy is laid out as train/ val/ test/ folders as that split
 *     says and only train and val images are moved: the test split stays clean and identical.
 *     Records every moved file in <dest>.moved.csv (file,true,given).
 *
 *   tsx bench/label-noise.ts score --moved <dest>.moved.csv --issues <issues.csv> --scores <scores.csv>
 *     precision and recall of the flagged label issues (kind label) against the moved files, and precision at
 *     N = the number moved (the N lowest scores).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { loadImageFolder } from '../src/data/discover.js';
import { Rng } from '../src/util/rng.js';

function args(): Record<string, string> {
  const a = process.argv.slice(3);
  const o: Record<string, string> = {};
  for (let i = 0; i < a.length; i += 2) o[a[i]!.replace(/^--/, '')] = a[i + 1]!;
  return o;
}

async function place(src: string, dst: string): Promise<void> {
  await fs.mkdir(path.dirname(dst), { recursive: true });
  try {
    await fs.link(src, dst);
  } catch {
    await fs.copyFile(src, dst);
  }
}

async function plant(): Promise<void> {
  const o = args();
  const rate = Number(o.rate);
  const rng = new Rng(Number(o.seed ?? 7));
  const ds = await loadImageFolder(o.src!, { exclude: o.exclude?.split(',') });
  await fs.rm(o.dest!, { recursive: true, force: true });
  const rel = (p: string) => path.relative(ds.root, p);
  // where each image goes: its split folder (with --split-from) and whether it may be moved
  const splitOf = new Map<string, string>();
  if (o['split-from']) {
    const s = JSON.parse(await fs.readFile(o['split-from'], 'utf8'));
    for (const part of ['train', 'val', 'test']) for (const [f] of s[part] as Array<[string, number]>) splitOf.set(f, part);
  }
  const pairs = o.pairs ? o.pairs.split(',').map((p) => p.split(':') as [string, string]) : undefined;
  const partner = new Map<string, string>();
  for (const [a, b] of pairs ?? []) {
    partner.set(a, b);
    partner.set(b, a);
  }
  const candidates = ds.images.filter((im) => splitOf.get(rel(im.path)) !== 'test' && (!pairs || partner.has(ds.classes[im.label]!)));
  const want = Math.round(rate * ds.images.length);
  if (want > candidates.length) throw new Error(`cannot move ${want} of ${candidates.length} candidate images`);
  const moved = new Map<string, string>();
  for (const im of rng.shuffle([...candidates]).slice(0, want)) {
    const from = ds.classes[im.label]!;
    let to: string;
    if (pairs) to = partner.get(from)!;
    else {
      let j = rng.int(ds.classes.length - 1);
      if (j >= im.label) j++;
      to = ds.classes[j]!;
    }
    moved.set(im.path, to);
  }
  const lines = ['file,true,given'];
  for (const im of ds.images) {
    const cls = moved.get(im.path) ?? ds.classes[im.label]!;
    const part = splitOf.get(rel(im.path));
    const name = path.basename(im.path);
    // a moved file keeps its name, prefixed with its true class so two images never collide
    const file = path.join(...(part ? [part] : []), cls, moved.has(im.path) ? `${ds.classes[im.label]}__${name}` : name);
    await place(im.path, path.join(o.dest!, file));
    if (moved.has(im.path)) lines.push(`${file.split(path.sep).join('/')},${ds.classes[im.label]},${cls}`);
  }
  await fs.writeFile(`${o.dest!.replace(/\/$/, '')}.moved.csv`, `${lines.join('\n')}\n`);
  console.log(`${o.dest}: ${ds.images.length} images, ${moved.size} moved (${pairs ? `pairs ${o.pairs}` : 'uniform'}, seed ${o.seed ?? 7}); recorded in ${o.dest!.replace(/\/$/, '')}.moved.csv`);
}

async function csvRows(file: string): Promise<string[][]> {
  const lines = (await fs.readFile(file, 'utf8')).trim().split('\n').slice(1);
  return lines.filter(Boolean).map((l) => l.split(','));
}

async function score(): Promise<void> {
  const o = args();
  const moved = new Set((await csvRows(o.moved!)).map((r) => r[0]!));
  const flagged = (await csvRows(o.issues!)).filter((r) => r[4] === 'label').map((r) => r[0]!);
  const flaggedAll = (await csvRows(o.issues!)).map((r) => r[0]!);
  const ranked = (await csvRows(o.scores!)).map((r) => r[0]!);
  const tp = flagged.filter((f) => moved.has(f)).length;
  const tpAll = flaggedAll.filter((f) => moved.has(f)).length;
  const atN = ranked.slice(0, moved.size).filter((f) => moved.has(f)).length;
  const r = {
    moved: moved.size,
    flaggedLabel: flagged.length,
    precision: tp / flagged.length,
    recall: tp / moved.size,
    flaggedAllKinds: flaggedAll.length,
    precisionAllKinds: tpAll / flaggedAll.length,
    recallAllKinds: tpAll / moved.size,
    precisionAtN: atN / moved.size,
  };
  console.log(JSON.stringify(r));
}

const cmd = process.argv[2];
if (cmd === 'plant') await plant();
else if (cmd === 'score') await score();
else throw new Error('usage: tsx bench/label-noise.ts plant|score ...');
