import { Command } from 'commander';
import path from 'node:path';
import { readLayersModel } from '../../backbones/layers-model.js';
import { entryDir, readRecord } from '../../backbones/model-cache.js';
import { findZooEntry } from '../../backbones/zoo.js';
import { ARCHITECTURES, buildArchitecture } from '../../train/architectures.js';
import { summarizeTopology } from '../../models/summary.js';
import { isDirectory } from '../../util/fs.js';
import { int, size } from '../options.js';
import { promises as fs } from 'node:fs';

export function summaryCommand(): Command {
  return new Command('summary')
    .summary('Keras-style summary of a model: layers, output shapes, parameters')
    .description(
      'Print a Keras-style summary (Layer (type), Output Shape, Param #, and total / trainable / non-trainable\n' +
        'parameters) of a run or model folder, a TF.js layers model folder, a cached zoo backbone, or a from-scratch\n' +
        `architecture (${Object.keys(ARCHITECTURES).join(', ')}; use --classes and --input-size). In a transfer-learning\n` +
        'model the frozen backbone counts as non-trainable.',
    )
    .argument('<model>', 'run/model folder, zoo name or architecture name')
    .option('--classes <n>', 'architecture: number of classes', int('--classes'), 97)
    .option('--input-size <HxW>', 'architecture: input size', size('--input-size'), [224, 224])
    .action(async (spec: string, o: any) => {
      if (ARCHITECTURES[spec]) {
        const { artifacts } = await buildArchitecture(spec, o.inputSize, o.classes, 42);
        process.stdout.write(`${(await summarizeTopology(artifacts.modelTopology)).text}\n`);
        return;
      }
      let dir: string | undefined;
      if (await isDirectory(spec)) dir = (await isDirectory(path.join(spec, 'model'))) ? path.join(spec, 'model') : spec;
      else {
        const entry = findZooEntry(spec);
        if (!entry) throw new Error(`'${spec}' is not a folder, a zoo backbone or an architecture (${Object.keys(ARCHITECTURES).join(', ')})`);
        if (!(await readRecord(entryDir(entry)))) throw new Error(`${entry.name} is not in the cache yet; train with it once, or run tlearn models import <folder> --name ${entry.name}`);
        dir = entryDir(entry);
      }
      const a = await readLayersModel(dir);
      let trainable: ((n: string) => boolean) | undefined;
      try {
        const meta = JSON.parse(await fs.readFile(path.join(dir, 'metadata.json'), 'utf8'));
        if (meta.head) trainable = (n: string) => n.startsWith('head_');
      } catch {
        /* no metadata: every layer counts as trainable */
      }
      process.stdout.write(`${(await summarizeTopology(a.modelTopology, { trainable })).text}\n`);
    });
}
