import { Command } from 'commander';
import { importModel, modelsDir, zooStatus } from '../../backbones/model-cache.js';
import { PREPROCESS_DESCRIPTIONS } from '../../backbones/preprocess.js';
import { resolveUrl, ZOO } from '../../backbones/zoo.js';
import { table } from '../format.js';

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export function modelsCommand(): Command {
  const cmd = new Command('models').summary('list the backbone zoo, import weights for offline use').description('The backbone zoo and the weights cache ($TLEARN_HOME/models, default ~/.cache/tlearn/models).');
  cmd
    .command('list')
    .description('Show every zoo backbone: input size, preprocessing, feature size, and whether its weights are cached.')
    .option('--json', 'print JSON')
    .action(async (o: any) => {
      const status = await zooStatus();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(status.map((s) => ({ ...s.entry, url: resolveUrl(s.entry.url), cached: s.cached, bytes: s.bytes, origin: s.record?.origin ?? null })), null, 2)}\n`);
        return;
      }
      const rows = [['name', 'input', 'features', 'preprocessing', 'cached', 'weights (Keras)', 'hash']];
      for (const s of status) {
        rows.push([
          s.entry.name,
          s.entry.inputSize.join('x'),
          String(s.entry.featureDim),
          PREPROCESS_DESCRIPTIONS[s.entry.preprocessing],
          s.cached ? `yes (${mb(s.bytes)}, ${s.record!.origin})` : 'no',
          resolveUrl(s.entry.url),
          s.entry.hash ? `${s.entry.hash.algorithm} ${s.entry.hash.value}` : 'none published (recorded at first download)',
        ]);
      }
      process.stdout.write(`${table(rows)}\n\ncache: ${modelsDir()}\n`);
    });
  cmd
    .command('import')
    .description(
      'Put a local copy of a zoo backbone\'s weights into the cache, for machines without internet: the Keras .h5 file\n' +
        '(as `tlearn models list` names it; checked against Keras\' published hash where there is one), or a TF.js\n' +
        'layers model folder of the same network (e.g. the TF.js copies of MobileNet v1 that Teachable Machine and ml5.js load,\n' +
        'older Keras 2.1 layout included; every weight\'s shape is checked against the architecture). The files are hashed and\n' +
        'checked on every later load.',
    )
    .argument('<file-or-folder>', 'Keras .h5 weights file or TF.js layers model folder')
    .requiredOption('--name <zoo-name>', `zoo name (${ZOO.map((e) => e.name).join(', ')})`)
    .action(async (folder: string, o: any) => {
      const { dir, record } = await importModel(folder, o.name);
      process.stdout.write(`imported ${folder} as ${record.name} into ${dir} (${Object.keys(record.files).length} files)\n`);
    });
  return cmd;
}
