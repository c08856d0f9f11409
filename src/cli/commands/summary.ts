import { Command } from 'commander';
import path from 'node:path';
import { readLayersModel } from '../../backbones/layers-model.js';
import { findZooEntry } from '../../backbones/zoo.js';
import { ARCHITECTURES, buildArchitecture } from '../../engine/architectures.js';
import { summarizeTopology } from '../../models/summary.js';
import { zooSummary } from '../../models/zoo-summary.js';
import { isDirectory } from '../../util/fs.js';
import { int, size } from '../options.js';
import { promises as fs } from 'node:fs';

export function summaryCommand(): Command {
  return new Command('summary')
    .summary('Keras-style summary of a model: layers, output shapes, parameters')
    .description(
      'Print a Keras-style summary (Layer (type), Output Shape, Param #, and total / trainable / non-trainable\n' +
        'parameters) of a run or model folder, a TF.js layers model folder, a zoo backbone (its Keras architecture\n' +
        'with the ImageNet top, nothing downloaded; with --classes N, the transfer model tlearn trains: the frozen\n' +
        `backbone plus a new N-way softmax), or a from-scratch architecture (${Object.keys(ARCHITECTURES).join(', ')}).\n` +
        'In a transfer-learning model the frozen backbone counts as non-trainable.',
    )
    .argument('<model>', 'run/model folder, zoo name or architecture name')
    .option('--classes <n>', 'architecture: number of classes (default 97); zoo backbone: summarise the transfer model tlearn trains, with a new softmax over this many classes', int('--classes'))
    .option('--input-size <HxW>', 'architecture: input size', size('--input-size'), [224, 224])
    .action(async (spec: string, o: any) => {
      if (ARCHITECTURES[spec]) {
        const { artifacts } = await buildArchitecture(spec, o.inputSize, o.classes ?? 97, 42);
        process.stdout.write(`${(await summarizeTopology(artifacts.modelTopology)).text}\n`);
        return;
      }
      if (!(await isDirectory(spec))) {
        const entry = findZooEntry(spec);
        if (!entry) throw new Error(`'${spec}' is not a folder, a zoo backbone or an architecture (${Object.keys(ARCHITECTURES).join(', ')})`);
        process.stdout.write(`${(await zooSummary(entry, o.classes)).text}\n`);
        return;
      }
      const dir = (await isDirectory(path.join(spec, 'model'))) ? path.join(spec, 'model') : spec;
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
