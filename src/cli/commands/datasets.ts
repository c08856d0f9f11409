import { Command } from 'commander';
import { datasetsStatus, getDataset, importDataset, recordFolder, removeDataset, datasetsDir, DatasetUnavailableError } from '../../datasets/store.js';
import { findEntry, REGISTRY, userRegistryFile } from '../../datasets/registry.js';
import { mirrored } from '../../util/download.js';
import { createLogger } from '../../util/log.js';
import { table } from '../format.js';
import { positive } from '../options.js';

function where(s: Awaited<ReturnType<typeof datasetsStatus>>[number]): string {
  if (!s.record) return 'no';
  if (!s.present) return `MISSING (${s.folder})`;
  return s.record.origin === 'link' ? 'yes (by reference)' : `yes (${s.record.origin === 'download' ? 'downloaded' : 'imported'})`;
}

export function datasetsCommand(): Command {
  const cmd = new Command('datasets')
    .summary('reference datasets by name: list, download, import local copies')
    .description(
      'Datasets by name, usable wherever a dataset folder is expected (tlearn train caltech101 ...; a path always\n' +
        `wins over a name). Registry: ${REGISTRY.map((e) => e.name).join(', ')}. Downloads are verified (the publisher's\n` +
        'hash where one is published, else the SHA-256 recorded at the first download), resumable, extracted safely and\n' +
        `kept in ${datasetsDir()} ($TLEARN_HOME/datasets). Your own entries go in ${userRegistryFile()}.`,
    );
  cmd
    .command('list')
    .summary('registry and imported datasets, and which are here')
    .description('Every registry dataset and every imported one: classes, images, download size, source, hash, and whether it is here.')
    .option('--json', 'print JSON')
    .action(async (o: any) => {
      const all = await datasetsStatus();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(all.map((s) => ({ name: s.name, ...(s.entry ? { url: mirrored(s.entry.url), registry: s.entry } : {}), present: s.present, folder: s.folder ?? null, record: s.record ?? null })), null, 2)}\n`);
        return;
      }
      const rows = [['name', 'classes', 'images', 'download', 'here', 'source', 'hash']];
      for (const s of all) {
        const e = s.entry;
        rows.push([
          s.name,
          String(s.record?.classes ?? e?.expect?.classes ?? '?'),
          (s.record?.images ?? e?.expect?.images)?.toLocaleString('en-US') ?? '?',
          e ? `${e.size} ${e.format}` : '-',
          where(s),
          e ? mirrored(e.url) : (s.record?.source ?? ''),
          e ? (e.hash ? `${e.hash.algorithm} ${e.hash.value.slice(0, 12)}... (${e.hash.source.replace(/ \(.*\)$/, '')})` : 'recorded at first download') : '',
        ]);
      }
      const presets = REGISTRY.flatMap((e) => Object.entries(e.presets ?? {}).map(([k, v]) => `  ${e.name}: --exclude ${k} = ${v.classes.join(',')} (${v.description})`));
      process.stdout.write(`${table(rows)}\n\nstore: ${datasetsDir()}\nnamed exclusion lists:\n${presets.join('\n')}\n`);
    });
  cmd
    .command('get')
    .summary('download a registry dataset (verified, resumable)')
    .description('Download a registry dataset into the store (verified, then extracted into a temporary folder and moved into place), or say where it already is.')
    .argument('<name>', 'dataset name (see tlearn datasets list)')
    .option('--force', 'download and extract it again, replacing the copy in the store')
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (name: string, o: any) => {
      const entry = await findEntry(name);
      if (!entry) throw new DatasetUnavailableError(`no registry dataset named '${name}' (names: ${REGISTRY.map((e) => e.name).join(', ')}); for a local copy use tlearn datasets import`);
      const record = await getDataset(entry, { force: o.force, logger: createLogger({ quiet: o.quiet }) });
      process.stdout.write(`${recordFolder(entry.name, record)}\n`);
    });
  cmd
    .command('import')
    .summary('name a local folder or archive (offline machines, your own data)')
    .description(
      'Give a local dataset a name, for machines without internet or for your own data. An archive (zip, tar, tar.gz) is\n' +
        'extracted into the store; for a registry name it must be the published archive where a hash is known (for\n' +
        "caltech101 the inner 101_ObjectCategories.tar.gz works too) and hold the registry's classes and images. A folder\n" +
        'is used where it is (nothing is copied; if it later moves, tlearn says so and you import it again), or copied\n' +
        'into the store with --copy (self-contained; copy-on-write where the file system can).',
    )
    .argument('<folder|archive>', 'a folder of class folders (or of train/ and val/ folders), or an archive of one')
    .requiredOption('--name <name>', 'the name to use it by: a registry name or your own (lower-case letters, digits, _ . -)')
    .option('--copy', 'copy a folder into the store instead of using it where it is')
    .option('--root <folder>', 'the folder inside the archive (or folder) that holds the class folders (default: the registry\'s, else found)')
    .option('--max-size <GB>', 'refuse archives that expand past this many GB (default: 20 times the archive, at least 4)', positive('--max-size'))
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (source: string, o: any) => {
      const record = await importDataset(source, o.name, { copy: o.copy, root: o.root, maxBytes: o.maxSize ? o.maxSize * 1e9 : undefined, logger: createLogger({ quiet: o.quiet }) });
      const how = record.origin === 'link' ? 'by reference' : 'into the store';
      process.stdout.write(`imported ${source} as ${record.name} ${how}: ${record.classes} classes, ${record.images.toLocaleString('en-US')} images in ${recordFolder(record.name, record)}\n`);
    });
  cmd
    .command('path')
    .summary("print a dataset's folder")
    .description('Print the folder that holds a dataset\'s class folders (exit status 1 when it is not here).')
    .argument('<name>', 'dataset name')
    .action(async (name: string) => {
      const s = (await datasetsStatus()).find((x) => x.name === name.trim().toLowerCase());
      if (!s?.record) throw new DatasetUnavailableError(`dataset ${name} is not in the store${s?.entry ? `: tlearn datasets get ${s.name}` : ' (see tlearn datasets list)'}`);
      if (!s.present) throw new DatasetUnavailableError(`dataset ${name}'s folder ${s.folder} no longer exists; import it again: tlearn datasets import <folder|archive> --name ${s.name}`);
      process.stdout.write(`${s.folder}\n`);
    });
  cmd
    .command('remove')
    .summary('remove a dataset from the store')
    .description('Remove a dataset from the store. For one imported by reference only the name goes; its folder is left alone.')
    .argument('<name>', 'dataset name')
    .action(async (name: string) => {
      const r = await removeDataset(name);
      process.stdout.write(`removed ${r.name}${r.origin === 'link' ? ` (the name only; ${r.source} is untouched)` : ''}\n`);
    });
  return cmd;
}
