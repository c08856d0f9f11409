import { createHash } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ArchiveError, extractArchive, sniffArchive, UnsafeArchiveError } from '../src/datasets/extract.js';
import { RegistryError, loadRegistry } from '../src/datasets/registry.js';
import { expandExclude, resolveDataArg } from '../src/datasets/resolve.js';
import { DatasetImportError, DatasetUnavailableError, datasetsDir, getDataset, importDataset, readDatasetRecord, removeDataset } from '../src/datasets/store.js';
import { HashMismatchError } from '../src/util/download.js';
import { closedPort, entriesOf, serveFiles, tarGz, zip, type ArchiveEntry, type TestServer } from './archives.js';
import { CALTECH_EXCLUDE, makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let tiny: string; // a folder of class folders: red, green, blue
let tinyEntries: ArchiveEntry[];
let tinyTgz: Buffer;
let tinyZip: Buffer;
let caltechLike: Buffer; // a zip holding a tar.gz, as Caltech-101 is published
let srv: TestServer;

beforeAll(async () => {
  tiny = await makeDataset(tmpDir(), { classes: { red: 10, green: 10, blue: 10 }, seed: 5, size: 40 });
  tinyEntries = await entriesOf(tiny, 'tiny');
  tinyTgz = await tarGz([{ name: 'tiny/', type: 'directory' }, ...tinyEntries]);
  tinyZip = zip([{ name: '__MACOSX/._tiny', body: Buffer.from('mac') }, ...tinyEntries.map((e) => ({ ...e, name: `photos/${e.name}` }))]);
  caltechLike = zip([{ name: 'caltech-like/show_annotation.m', body: Buffer.from('% matlab') }, { name: 'caltech-like/objects.tar.gz', body: await tarGz(tinyEntries.map((e) => ({ ...e, name: e.name.replace(/^tiny/, 'Objects') }))) }]);
  srv = await serveFiles({
    '/tiny.tgz': tinyTgz,
    '/tiny.zip': tinyZip,
    '/caltech-like.zip': caltechLike,
    // what TLEARN_MIRROR maps hymenoptera's URL to: a small stand-in, not the real set
    '/download.pytorch.org/tutorial/hymenoptera_data.zip': zip(tinyEntries.slice(0, 8).map((e, i) => ({ ...e, name: `hymenoptera_data/${i % 2 ? 'train' : 'val'}/${i < 4 ? 'ants' : 'bees'}/${i}.jpg` }))),
  });
});
afterAll(() => srv?.close());

let home: string;
async function writeUserRegistry(entries: object[]): Promise<void> {
  await fs.mkdir(path.join(home, 'datasets'), { recursive: true });
  await fs.writeFile(path.join(home, 'datasets', 'registry.json'), JSON.stringify(entries, null, 2));
}

beforeEach(async () => {
  home = tmpDir('tlearn-ds-home-');
  process.env.TLEARN_HOME = home;
  delete process.env.TLEARN_MIRROR;
  srv.requests.length = 0;
  srv.cut.clear();
  await writeUserRegistry([
    { name: 'tiny', url: `${srv.base}/tiny.tgz`, format: 'tar.gz', root: 'tiny', hash: { algorithm: 'sha256', value: sha256(tinyTgz) }, expect: { classes: 3, images: 30 } },
    { name: 'tinyzip', url: `${srv.base}/tiny.zip`, format: 'zip', root: 'photos/tiny', expect: { classes: 3, images: 30 } },
    { name: 'nested', url: `${srv.base}/caltech-like.zip`, format: 'zip', inner: { path: 'caltech-like/objects.tar.gz', format: 'tar.gz' }, root: 'Objects', expect: { classes: 3, images: 30 } },
    { name: 'badhash', url: `${srv.base}/tiny.tgz`, format: 'tar.gz', root: 'tiny', hash: { algorithm: 'sha256', value: '0'.repeat(64) } },
    { name: 'wrongcount', url: `${srv.base}/tiny.tgz`, format: 'tar.gz', root: 'tiny', expect: { classes: 3, images: 31 } },
  ]);
});

/** Nothing of a refused download or extraction is left in the store or the downloads folder. */
async function storeHolds(): Promise<string[]> {
  const ds = (await fs.readdir(datasetsDir()).catch(() => [] as string[])).filter((n) => n !== 'registry.json' && n !== 'known-hashes.json');
  const dl = await fs.readdir(path.join(home, 'downloads')).catch(() => [] as string[]);
  return [...ds, ...dl.map((n) => `downloads/${n}`)];
}

describe('safe extraction', () => {
  const outside = () => path.join(os.tmpdir(), `tlearn-escape-${process.pid}`);

  async function refused(archive: Buffer, name: string, re: RegExp): Promise<void> {
    const dir = tmpDir();
    const file = path.join(dir, name);
    await fs.writeFile(file, archive);
    const dest = path.join(dir, 'out');
    const err = await extractArchive(file, (await sniffArchive(file))!, dest).catch((e) => e);
    expect(err, String(err)).toBeInstanceOf(UnsafeArchiveError);
    expect(err.message).toMatch(re);
    expect(existsSync(path.join(dir, 'evil.txt'))).toBe(false);
    expect(existsSync(outside())).toBe(false);
  }

  it('extracts tar.gz and zip archives, recognising them by their first bytes', async () => {
    const dir = tmpDir();
    for (const [name, buf] of [['a.tgz', tinyTgz], ['a.zip', tinyZip], ['a.tar', await tarGz(tinyEntries, false)]] as const) {
      await fs.writeFile(path.join(dir, name), buf);
      const format = (await sniffArchive(path.join(dir, name)))!;
      expect(format).toBe({ 'a.tgz': 'tar.gz', 'a.zip': 'zip', 'a.tar': 'tar' }[name]);
      const r = await extractArchive(path.join(dir, name), format, path.join(dir, `out-${name}`));
      expect(r.files).toBe(name === 'a.zip' ? 31 : 30);
    }
    const img = await fs.readFile(path.join(dir, 'out-a.zip', 'photos', 'tiny', 'red', 'img_003.jpg'));
    expect(Buffer.compare(img, await fs.readFile(path.join(tiny, 'red', 'img_003.jpg')))).toBe(0);
  });

  it("refuses zip-slip entries ('..'), in zip and tar.gz, with nothing written outside the target", async () => {
    await refused(zip([{ name: 'ok.txt', body: Buffer.from('ok') }, { name: '../evil.txt', body: Buffer.from('pwned') }]), 'slip.zip', /refused entry .*\.\.\/evil\.txt/);
    await refused(await tarGz([{ name: 'ok.txt', body: Buffer.from('ok') }, { name: 'x/../../evil.txt', body: Buffer.from('pwned') }]), 'slip.tgz', /refused entry 'x\/\.\.\/\.\.\/evil\.txt': a '\.\.' path segment would write outside the target folder/);
    await refused(zip([{ name: '..\\evil.txt', body: Buffer.from('pwned') }]), 'slip-win.zip', /refused entry/);
  });

  it('refuses absolute paths', async () => {
    const abs = path.join(outside(), 'abs.txt');
    await refused(await tarGz([{ name: abs, body: Buffer.from('pwned') }]), 'abs.tgz', /refused entry '\/.*abs\.txt': absolute path/);
    await refused(zip([{ name: abs, body: Buffer.from('pwned') }]), 'abs.zip', /refused entry \(absolute path: \/.*abs\.txt\)/);
    await refused(zip([{ name: 'C:/evil.txt', body: Buffer.from('pwned') }]), 'drive.zip', /absolute path/);
  });

  it('refuses symbolic links, hard links and device files', async () => {
    await refused(await tarGz([{ name: 'link', type: 'symlink', linkname: '/etc/passwd' }]), 'sym.tgz', /refused entry 'link': a symbolic link \(to '\/etc\/passwd'\)/);
    await refused(zip([{ name: 'photos/link.jpg', type: 'symlink', linkname: '../../evil.txt' }]), 'sym.zip', /refused entry 'photos\/link\.jpg': a symbolic link/);
    await refused(await tarGz([{ name: 'hard', type: 'link', linkname: 'x' }]), 'hard.tgz', /a hard link/);
    await refused(await tarGz([{ name: 'dev', type: 'character-device' }]), 'dev.tgz', /a character-device entry/);
  });

  it('refuses archives that expand past the size limit (a small gzip of a large file)', async () => {
    const bomb = await tarGz([{ name: 'zeros.bin', body: Buffer.alloc(8 * 1024 * 1024) }]);
    expect(bomb.length).toBeLessThan(100_000);
    const dir = tmpDir();
    await fs.writeFile(path.join(dir, 'bomb.tgz'), bomb);
    const err = await extractArchive(path.join(dir, 'bomb.tgz'), 'tar.gz', path.join(dir, 'out'), { maxBytes: 1024 * 1024 }).catch((e) => e);
    expect(err).toBeInstanceOf(UnsafeArchiveError);
    expect(err.message).toMatch(/expands past the limit of 0\.0 GiB \(at 'zeros\.bin'\)/);
    const zbomb = zip([{ name: 'zeros.bin', body: Buffer.alloc(8 * 1024 * 1024) }]);
    await fs.writeFile(path.join(dir, 'bomb.zip'), zbomb);
    await expect(extractArchive(path.join(dir, 'bomb.zip'), 'zip', path.join(dir, 'out2'), { maxBytes: 1024 * 1024 })).rejects.toThrow(/expands past the limit/);
  });

  it('a truncated archive is reported as such', async () => {
    const dir = tmpDir();
    await fs.writeFile(path.join(dir, 't.tgz'), tinyTgz.subarray(0, tinyTgz.length >> 1));
    const err = await extractArchive(path.join(dir, 't.tgz'), 'tar.gz', path.join(dir, 'out')).catch((e) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err.message).toMatch(/is not a readable tar\.gz archive .* truncated or corrupt/);
  });
});

describe('datasets by name: download, verify, extract into place', () => {
  it('downloads a dataset once (hash as published), extracts it in place and records where it came from', async () => {
    const r = await resolveDataArg('tiny');
    expect(r.name).toBe('tiny');
    expect(r.folder).toBe(path.join(datasetsDir(), 'tiny', 'tiny'));
    expect(r.record).toMatchObject({ origin: 'download', classes: 3, images: 30, archive: { check: 'publisher', sha256: sha256(tinyTgz) } });
    expect((await fs.readdir(r.folder)).sort()).toEqual(['blue', 'green', 'red']);
    await resolveDataArg('TINY'); // names are case-insensitive; the second use does not download again
    expect(srv.requests).toHaveLength(1);
    expect(await storeHolds()).toEqual(['tiny']); // the archive was deleted after extraction
  });

  it('without a published hash: the SHA-256 is recorded at the first download, and a changed file is refused later', async () => {
    const rec = await getDataset((await loadRegistry()).find((e) => e.name === 'tinyzip')!);
    expect(rec.archive).toMatchObject({ check: 'first-download', sha256: sha256(tinyZip) });
    const known = JSON.parse(await fs.readFile(path.join(datasetsDir(), 'known-hashes.json'), 'utf8'));
    expect(known[`${srv.base}/tiny.zip`].sha256).toBe(sha256(tinyZip));
    // the same file again: verified against the recorded hash
    const again = await getDataset((await loadRegistry()).find((e) => e.name === 'tinyzip')!, { force: true });
    expect(again.archive!.check).toBe('recorded');
    // the publisher's file changes: refused, and the copy in the store stays as it was
    const saved = srv.files['/tiny.zip']!;
    srv.files['/tiny.zip'] = zip(tinyEntries.map((e) => ({ ...e, name: `photos/${e.name}` })));
    try {
      const err = await getDataset((await loadRegistry()).find((e) => e.name === 'tinyzip')!, { force: true }).catch((e) => e);
      expect(err).toBeInstanceOf(HashMismatchError);
      expect(err.message).toMatch(/sha256 is [0-9a-f]{64}, tlearn recorded [0-9a-f]{64}; the file was not kept at its first download on \d{4}-\d\d-\d\d: the file at .* changed/);
      expect((await readDatasetRecord('tinyzip'))!.archive!.check).toBe('recorded');
    } finally {
      srv.files['/tiny.zip'] = saved;
    }
  });

  it('a zip holding a tar.gz (as Caltech-101 is published) is extracted without a half dataset left behind', async () => {
    const r = await resolveDataArg('nested');
    expect(path.basename(r.folder)).toBe('Objects');
    expect(r.record).toMatchObject({ classes: 3, images: 30 });
    expect(await storeHolds()).toEqual(['nested']);
  });

  it('a wrong hash is refused and nothing is kept', async () => {
    const err = await resolveDataArg('badhash').catch((e) => e);
    expect(err).toBeInstanceOf(HashMismatchError);
    expect(err.message).toMatch(/sha256 is [0-9a-f]{64}, the publisher's is 0{64}; the file was not kept/);
    expect(await storeHolds()).toEqual([]);
  });

  it('an archive that does not hold the expected classes and images is refused and nothing is kept', async () => {
    await expect(resolveDataArg('wrongcount')).rejects.toThrow(/the archive holds 3 classes and 30 images, but wrongcount has 3 classes and 31 images; it is not the dataset tlearn knows by that name, and nothing was kept/);
    expect(await storeHolds()).toEqual([]);
    // through TLEARN_MIRROR, hymenoptera comes from <mirror>/download.pytorch.org/...: a stand-in is refused
    process.env.TLEARN_MIRROR = srv.base;
    await expect(resolveDataArg('hymenoptera')).rejects.toThrow(/holds 2 classes and 8 images, but hymenoptera has 2 classes and 398 images/);
    expect(srv.requests.at(-1)!.url).toBe('/download.pytorch.org/tutorial/hymenoptera_data.zip');
    expect(await storeHolds()).toEqual([]);
  });

  it('a download cut halfway is resumed and verified before anything is extracted', async () => {
    srv.cut.set('/tiny.tgz', 1);
    const r = await resolveDataArg('tiny');
    expect(r.record!.images).toBe(30);
    expect(srv.requests).toHaveLength(2);
    expect(srv.requests[0]!.range).toBeUndefined();
    expect(srv.requests[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('an interrupted extraction (a killed process) leaves no dataset that looks whole, and is cleaned up later', async () => {
    // what a process killed mid-extraction leaves: a staging folder named with its (now dead) pid
    const stale = path.join(datasetsDir(), '.staging-tiny-999999999-0123abcd');
    await fs.mkdir(path.join(stale, 'extract', 'tiny', 'red'), { recursive: true });
    await expect(resolveDataArg('tiny', { download: false })).rejects.toThrow(/dataset tiny is not in the store yet: tlearn datasets get tiny/);
    await resolveDataArg('tiny');
    expect(await storeHolds()).toEqual(['tiny']);
  });

  it('offline, a name that is not here yet gives an error naming both remedies', async () => {
    process.env.TLEARN_MIRROR = `http://127.0.0.1:${await closedPort()}`;
    const err = await resolveDataArg('caltech101').catch((e) => e);
    expect(err).toBeInstanceOf(DatasetUnavailableError);
    expect(err.message).toMatch(/dataset caltech101 is not in tlearn's store .* could not be downloaded: cannot reach/);
    expect(err.message).toMatch(/connect this machine to the internet and run the command again/);
    expect(err.message).toMatch(/tlearn datasets import <folder\|archive> --name caltech101/);
    expect(await storeHolds()).toEqual([]);
  });

  it('a path always wins over a name; unknown names and missing paths are reported clearly', async () => {
    const cwd = process.cwd();
    const dir = tmpDir();
    await makeDataset(path.join(dir, 'tiny'), { classes: { a: 2, b: 2 } });
    process.chdir(dir);
    try {
      expect(await resolveDataArg('tiny')).toEqual({ folder: 'tiny', presets: {} });
      expect(srv.requests).toHaveLength(0);
    } finally {
      process.chdir(cwd);
    }
    await expect(resolveDataArg('no-such-set')).rejects.toThrow(/no-such-set is neither a folder nor a dataset name \(names: caltech101, hymenoptera, tf_flowers, imagenette, tiny/);
    expect(await resolveDataArg('./missing/folder')).toEqual({ folder: './missing/folder', presets: {} }); // reported by the loader
  });

  it('a broken registry.json is reported with the file and the entry', async () => {
    await writeUserRegistry([{ name: 'Bad Name', url: 'x' }]);
    await expect(loadRegistry()).rejects.toThrow(RegistryError);
    await expect(loadRegistry()).rejects.toThrow(/registry\.json entry 1: 'name' must be lower-case/);
    await writeUserRegistry([{ name: 'caltech101', url: 'https://x/y.zip', format: 'zip', root: '' }]);
    await expect(loadRegistry()).rejects.toThrow(/'caltech101' is a built-in dataset name/);
  });
});

describe('datasets import', () => {
  it('a folder is used where it is (nothing copied); named exclusion lists apply; when it moves, the error says what to do', async () => {
    const src = tmpDir();
    const folder = await makeDataset(path.join(src, 'objects'), { classes: Object.fromEntries([...CALTECH_EXCLUDE, 'ant', 'bass'].map((c) => [c, 2])) });
    const rec = await importDataset(folder, 'caltech101');
    expect(rec).toMatchObject({ origin: 'link', folder, classes: 7, images: 14 });
    expect(await fs.readdir(path.join(datasetsDir(), 'caltech101'))).toEqual(['tlearn-dataset.json']);
    const r = await resolveDataArg('caltech101');
    expect(r.folder).toBe(folder);
    expect(expandExclude(['notebook', 'ant'], r)).toEqual([...CALTECH_EXCLUDE, 'ant']);
    expect(expandExclude(['notebook'], await resolveDataArg(folder))).toEqual(['notebook']); // a path has no named lists
    await fs.rename(folder, path.join(src, 'moved'));
    await expect(resolveDataArg('caltech101')).rejects.toThrow(/dataset caltech101 was imported by reference from .*objects, which no longer exists\. If it moved, import it again from its new place: tlearn datasets import <folder\|archive> --name caltech101, or get a fresh copy with tlearn datasets get caltech101 --force/);
    await removeDataset('caltech101');
    expect(existsSync(path.join(src, 'moved', 'ant', 'img_000.jpg'))).toBe(true); // removing the name leaves the folder alone
  });

  it('--copy copies a folder into the store; an archive is extracted, checked against the registry, and refused when it is not the published one', async () => {
    const rec = await importDataset(tiny, 'mine', { copy: true });
    expect(rec).toMatchObject({ origin: 'import', classes: 3, images: 30 });
    expect(existsSync(path.join(datasetsDir(), 'mine', path.basename(tiny), 'red', 'img_000.jpg'))).toBe(true);
    const dir = tmpDir();
    await fs.writeFile(path.join(dir, 'tiny.tgz'), tinyTgz);
    const fromArchive = await importDataset(path.join(dir, 'tiny.tgz'), 'tiny');
    expect(fromArchive).toMatchObject({ origin: 'import', classes: 3, images: 30, archive: { check: 'publisher' } });
    // an archive under a registry name whose published hash it does not have is refused
    await expect(importDataset(path.join(dir, 'tiny.tgz'), 'tf_flowers')).rejects.toThrow(/has sha256 [0-9a-f]{64}, but TensorFlow Datasets \(url_checksums\/tf_flowers\.txt\) lists 4c54ace7.* it is not the tf_flowers archive\. Import it under another name \(--name my-tf_flowers\)/);
    // an archive under your own name: the folder of class folders is found inside
    await fs.writeFile(path.join(dir, 'photos.zip'), tinyZip);
    const own = await importDataset(path.join(dir, 'photos.zip'), 'photos');
    expect(own.folder).toBe('tiny');
    // Caltech-101's inner tar.gz works for the zip's registry entry
    await fs.writeFile(path.join(dir, 'objects.tar.gz'), await tarGz(tinyEntries.map((e) => ({ ...e, name: e.name.replace(/^tiny/, 'Objects') }))));
    expect((await importDataset(path.join(dir, 'objects.tar.gz'), 'nested')).images).toBe(30);
    await expect(importDataset(path.join(dir, 'photos.zip'), 'Bad/Name')).rejects.toThrow(DatasetImportError);
    await fs.writeFile(path.join(dir, 'notes.txt'), 'hello');
    await expect(importDataset(path.join(dir, 'notes.txt'), 'notes')).rejects.toThrow(/notes\.txt is not a zip, tar or tar\.gz archive \(or a folder\)/);
    await expect(importDataset(path.join(dir, 'nope'), 'nope')).rejects.toThrow(/nope does not exist/);
    // an unsafe archive: refused, and neither the store nor anything outside it holds a trace
    await fs.writeFile(path.join(dir, 'slip.zip'), zip([...tinyEntries, { name: '../../evil.txt', body: Buffer.from('pwned') }]));
    await expect(importDataset(path.join(dir, 'slip.zip'), 'slip')).rejects.toThrow(/refused entry \(invalid relative path: \.\.\/\.\.\/evil\.txt\); nothing was extracted/);
    expect(await readDatasetRecord('slip')).toBeUndefined();
    expect((await fs.readdir(datasetsDir())).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(existsSync(path.join(datasetsDir(), '..', 'evil.txt'))).toBe(false);
  });
});

describe('tlearn datasets and tlearn train <name> (CLI, end to end on the served dataset)', () => {
  it('get, list, path; train by name gives the same split and test accuracy as the path form; offline help', async () => {
    const env = { TLEARN_HOME: home };
    const get = await runCli(['datasets', 'get', 'tiny'], env);
    expect(get.code, get.stderr).toBe(0);
    const folder = get.stdout.trim();
    expect(folder).toBe(path.join(home, 'datasets', 'tiny', 'tiny'));
    expect(get.stderr).toMatch(/tiny: tiny\.tgz verified \(sha256 as published by/);
    expect(get.stderr).toMatch(/tiny: 3 classes, 30 images/);
    const list = await runCli(['datasets', 'list'], env);
    expect(list.stdout).toMatch(/^tiny\s+3\s+30\s+.*yes \(downloaded\)/m);
    expect(list.stdout).toMatch(/^caltech101\s+102\s+9,145\s+about 137 MB zip\s+no\s+https:\/\/data\.caltech\.edu/m);
    expect((await runCli(['datasets', 'path', 'tiny'], env)).stdout.trim()).toBe(folder);
    const help = await runCli(['datasets', 'import', '--help'], env);
    for (const flag of ['--name', '--copy', '--root', '--max-size', '--quiet']) expect(help.stdout, flag).toContain(flag);
    expect((await runCli(['train', '--help'], env)).stdout).toMatch(/or\s+dataset\s+name\s+\(tlearn\s+datasets\s+list\)/);
    const notHere = await runCli(['datasets', 'path', 'imagenette'], env);
    expect(notHere.code).toBe(1);
    expect(notHere.stderr).toMatch(/dataset imagenette is not in the store: tlearn datasets get imagenette/);

    const backbone = await makeTinyBackbone(tmpDir());
    const common = ['--backbone', backbone, '--epochs', '5', '--batch-size', '8', '--lr', '0.02', '--json'];
    const outName = path.join(tmpDir(), 'by-name');
    const outPath = path.join(tmpDir(), 'by-path');
    const byName = await runCli(['train', 'tiny', ...common, '--out', outName], env);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stderr).toMatch(/dataset tiny: .*datasets\/tiny\/tiny \(downloaded from http:\/\/127\.0\.0\.1/);
    const byPath = await runCli(['train', folder, ...common, '--out', outPath], env);
    expect(byPath.code, byPath.stderr).toBe(0);
    const a = JSON.parse(byName.stdout);
    const b = JSON.parse(byPath.stdout);
    expect(a.dataset.classes).toBe(3);
    expect(a.dataset.images).toBe(30);
    expect(a.test.accuracy).toBe(b.test.accuracy);
    const split = async (run: string) => JSON.parse(await fs.readFile(path.join(run, 'split.json'), 'utf8'));
    const [sa, sb] = [await split(outName), await split(outPath)];
    expect(sa.test).toEqual(sb.test);
    expect(sa.train).toEqual(sb.train);
    expect(sa.test.length).toBeGreaterThan(0);
    expect(srv.requests.filter((q) => q.url === '/tiny.tgz')).toHaveLength(1);
    const ev = await runCli(['evaluate', outName, 'tiny', '--out', path.join(tmpDir(), 'ev'), '--json'], env);
    expect(ev.code, ev.stderr).toBe(0);
    expect(JSON.parse(ev.stdout).metrics.n).toBe(30);

    const offline = await runCli(['train', 'caltech101', '--exclude', 'notebook'], { ...env, TLEARN_MIRROR: `http://127.0.0.1:${await closedPort()}` });
    expect(offline.code).toBe(1);
    expect(offline.stderr).toMatch(/tlearn: error: dataset caltech101 is not in tlearn's store/);
    expect(offline.stderr).toMatch(/tlearn datasets import <folder\|archive> --name caltech101/);
  });
});
