import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { labelIssuesCsv, labelIssuesForFolder } from '../src/train/label-issues.js';
import { readExcludeList } from '../src/train/exclude-files.js';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let home: string;
let backbone: string;
let data: string;
/** The images moved to a wrong class folder: [file now, true class]. */
const moved: Array<[string, string]> = [
  ['blue/moved_red_1.jpg', 'red'],
  ['red/moved_green_2.jpg', 'green'],
];

beforeAll(async () => {
  home = tmpDir('tlearn-labels-home-');
  backbone = await makeTinyBackbone(path.join(tmpDir(), 'tiny'));
  data = await makeDataset(tmpDir(), { classes: { red: 16, green: 16, blue: 16 }, seed: 5, size: 40 });
  await fs.rename(path.join(data, 'red/img_001.jpg'), path.join(data, moved[0]![0]));
  await fs.rename(path.join(data, 'green/img_002.jpg'), path.join(data, moved[1]![0]));
  // the same picture in two classes: a duplicate with another label
  await fs.copyFile(path.join(data, 'blue/img_005.jpg'), path.join(data, 'green/copy_of_blue_5.jpg'));
});

const cli = (args: string[]) => runCli(args, { TLEARN_HOME: home });

describe('tlearn check --labels', () => {
  it('flags the moved images with their true class, the duplicate with its twin, writes the CSV and JSON', async () => {
    const csv = path.join(tmpDir(), 'out', 'issues.csv');
    const scores = path.join(tmpDir(), 'scores.csv');
    const r = await cli(['check', data, '--labels', '--backbone', backbone, '--folds', '4', '--csv', csv, '--scores', scores, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/label issues \(tiny, 4-fold out-of-fold heads/);
    expect(r.stdout).toMatch(/wrote \d+ flagged images? to /);
    const text = await fs.readFile(csv, 'utf8');
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('file,given,suggested,score,kind');
    const rows = lines.slice(1).map((l) => l.split(','));
    for (const [file, truth] of moved) {
      const row = rows.find((x) => x[0] === file);
      expect(row, `${file} flagged`).toBeDefined();
      expect(row![1]).toBe(file.split('/')[0]);
      expect(row![2]).toBe(truth);
      expect(row![4]).toBe('label');
      expect(Number(row![3])).toBeGreaterThanOrEqual(0);
      expect(Number(row![3])).toBeLessThan(0.5);
    }
    // the label issues come first, lowest score first
    const labelRows = rows.filter((x) => x[4] === 'label');
    expect(rows.slice(0, labelRows.length)).toEqual(labelRows);
    for (let i = 1; i < labelRows.length; i++) expect(Number(labelRows[i]![3])).toBeGreaterThanOrEqual(Number(labelRows[i - 1]![3]));
    // every checked image's score, lowest first: the moved ones among the first
    const all = (await fs.readFile(scores, 'utf8')).trim().split('\n');
    expect(all[0]).toBe('file,given,suggested,score');
    expect(all).toHaveLength(50);
    const firstFiles = all.slice(1, 6).map((l) => l.split(',')[0]);
    for (const [file] of moved) expect(firstFiles).toContain(file);
    // the copy of a blue image filed under green: flagged (as a wrong label or as a duplicate of its twin)
    const copy = rows.find((x) => x[0] === 'green/copy_of_blue_5.jpg' || x[0] === 'blue/img_005.jpg');
    expect(copy).toBeDefined();

    const j = await cli(['check', data, '--labels', '--backbone', backbone, '--folds', '4', '--json']);
    expect(j.code, j.stderr).toBe(0);
    const out = JSON.parse(j.stdout);
    expect(out.trainable).toBe(true);
    expect(out.labels.folds).toBe(4);
    expect(out.labels.checked).toBe(49);
    expect(out.labels.health).toHaveLength(3);
    expect(out.labels.issues.map((i: { file: string }) => i.file)).toEqual(expect.arrayContaining(moved.map((m) => m[0])));
    expect(out.labels.issues[0]).toMatchObject({ kind: 'label', split: expect.stringMatching(/^(train|val|test)$/) });
  });

  it('the library call: the same list, progress by stage, CSV quoting', async () => {
    const stages = new Set<string>();
    const r = await labelIssuesForFolder(data, { backbone, folds: 4, onProgress: (p) => stages.add(p.stage) });
    expect([...stages]).toEqual(['features', 'folds', 'neighbours', 'duplicates']);
    expect(r.issues.filter((i) => i.kind === 'label').map((i) => i.file)).toEqual(expect.arrayContaining(moved.map((m) => m[0])));
    const csv = labelIssuesCsv([{ file: 'a,b/c "d".jpg', path: '/x', given: 'a,b', suggested: 'e', score: 0.1234567, kind: 'label', split: 'train' }]);
    expect(csv).toBe('file,given,suggested,score,kind\n"a,b/c ""d"".jpg","a,b",e,0.123457,label\n');
    const back = path.join(tmpDir(), 'q.csv');
    await fs.writeFile(back, csv);
    expect(await readExcludeList(back)).toEqual([{ file: 'a,b/c "d".jpg', given: 'a,b', suggested: 'e', score: 0.123457, kind: 'label' }]);
    const aborted = new AbortController();
    aborted.abort(new Error('stopped by the caller'));
    await expect(labelIssuesForFolder(data, { backbone, folds: 4, signal: aborted.signal })).rejects.toThrow(/stopped by the caller/);
  });

  it('bad input: one class, two images, a class smaller than the folds, flags without --labels', async () => {
    const one = await makeDataset(tmpDir(), { classes: { only: 6 }, seed: 1 });
    const a = await cli(['check', one, '--labels', '--backbone', backbone, '-q']);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/tlearn check --labels: cannot look for wrong labels: .*has only one class with images \('only'\); a classifier needs at least two/);

    const two = await makeDataset(tmpDir(), { classes: { a: 1, b: 1 }, seed: 1 });
    const b = await cli(['check', two, '--labels', '--backbone', backbone, '-q']);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/cannot look for wrong labels: .* has 2 images: finding wrong labels needs at least two classes of at least two images each/);
    expect(b.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace

    const small = await makeDataset(tmpDir(), { classes: { big: 12, small: 3, single: 1, other: 10 }, seed: 1 });
    const c = await cli(['check', small, '--labels', '--backbone', backbone, '--folds', '5', '-q']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/note: class 'small' has 3 images, fewer than the 5 folds: each is checked by heads trained on the class's other 2/);
    expect(c.stdout).toMatch(/not checked: single\/img_000\.jpg: the only readable image of class 'single'/);

    const d = await cli(['check', small, '--csv', 'x.csv']);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/--csv applies to --labels/);
    const e = await cli(['check', small, '--labels', '--folds', '1']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/--folds/);
  });
});

describe('tlearn train --exclude-files', () => {
  it('leaves the listed train/val images out, keeps the test split as it is, and says so in metrics.json and the report', async () => {
    const csv = path.join(tmpDir(), 'issues.csv');
    const c = await cli(['check', data, '--labels', '--backbone', backbone, '--folds', '4', '--csv', csv, '-q']);
    expect(c.code, c.stderr).toBe(0);
    const listed = (await readExcludeList(csv)).map((e) => e.file);
    const base = path.join(tmpDir(), 'plain');
    const plain = await cli(['train', data, '--backbone', backbone, '--epochs', '2', '--out', base, '--force', '-q']);
    expect(plain.code, plain.stderr).toBe(0);
    const out = path.join(tmpDir(), 'excluded');
    const r = await cli(['train', data, '--backbone', backbone, '--epochs', '2', '--out', out, '--force', '--exclude-files', csv, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/left out: \d+ images? left out \(\d+ train, \d+ val\): listed in /);
    const m = JSON.parse(await fs.readFile(path.join(out, 'metrics.json'), 'utf8'));
    const splitPlain = JSON.parse(await fs.readFile(path.join(base, 'split.json'), 'utf8'));
    const inTest = listed.filter((f) => splitPlain.test.some(([p]: [string]) => p === f));
    expect(m.excludedFiles.count).toBe(listed.length - inTest.length);
    expect(m.excludedFiles.keptInTest.map((e: { file: string }) => e.file).sort()).toEqual(inTest.sort());
    expect(m.dataset.split.train + m.dataset.split.val).toBe(splitPlain.counts.train + splitPlain.counts.val - m.excludedFiles.count);
    // the test split is identical
    const mPlain = JSON.parse(await fs.readFile(path.join(base, 'metrics.json'), 'utf8'));
    expect(m.dataset.split.test).toBe(mPlain.dataset.split.test);
    const preds = (d: string) => fs.readFile(path.join(d, 'test-predictions.csv'), 'utf8').then((t) => t.trim().split('\n').slice(1).map((l) => l.split(',')[0]));
    expect(await preds(out)).toEqual(await preds(base));
    const html = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Possible label issues</h2>');
    expect(html).toContain('left out');
    expect((html.match(/<figure class="wrong"><img src="data:image/g) ?? []).length).toBeGreaterThanOrEqual(listed.length);

    // --drop-label-issues: the same check run first, in the same process
    const dropped = path.join(tmpDir(), 'dropped');
    const d = await cli(['train', data, '--backbone', backbone, '--epochs', '2', '--out', dropped, '--force', '--drop-label-issues', '-q']);
    expect(d.code, d.stderr).toBe(0);
    const md = JSON.parse(await fs.readFile(path.join(dropped, 'metrics.json'), 'utf8'));
    expect(md.excludedFiles.source).toBe('check --labels');
    expect(md.excludedFiles.reason).toMatch(/^flagged by check --labels \(tiny, 5 folds\)/);
    // exactly what check --labels flags with the same options, less the test split
    const flaggedNow = (await labelIssuesForFolder(data, { backbone })).issues.filter((i) => i.split !== 'test').map((i) => i.file);
    expect(md.excludedFiles.excluded.map((e: { file: string }) => e.file).sort()).toEqual(flaggedNow.sort());
    expect(md.dataset.split.test).toBe(mPlain.dataset.split.test);
    const both = await cli(['train', data, '--backbone', backbone, '--out', path.join(tmpDir(), 'b'), '--exclude-files', csv, '--drop-label-issues', '--force', '-q']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--exclude-files and --drop-label-issues: give one or the other/);

    const missing = await cli(['train', data, '--backbone', backbone, '--epochs', '1', '--out', path.join(tmpDir(), 'm'), '--exclude-files', path.join(tmpDir(), 'none.csv'), '--force', '-q']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--exclude-files .*none\.csv: cannot read it \(ENOENT\)/);
  }, 600_000);
});
