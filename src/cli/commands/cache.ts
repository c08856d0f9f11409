import { Command } from 'commander';
import { promises as fs } from 'node:fs';
import { clearFeaturesCache, featuresCacheUsage, featuresRoot } from '../../features/cache.js';
import { onnxCacheDir } from '../../runtime/inference.js';
import { modelsDir } from '../../backbones/model-cache.js';

export function cacheCommand(): Command {
  const cmd = new Command('cache')
    .summary('show or clear the features cache')
    .description('The features cache ($TLEARN_HOME/features: one LMDB store shared by every tlearn process, keyed by image content and backbone settings) and converted ONNX models ($TLEARN_HOME/onnx).');
  cmd
    .command('info')
    .description('Show where the caches are and how much they hold.')
    .action(async () => {
      const u = await featuresCacheUsage();
      process.stdout.write(`features: ${featuresRoot()}: ${u.entries} vectors for ${u.extractors} backbone settings, ${(u.bytes / 1e6).toFixed(1)} MB\n`);
      if (u.legacyFiles) process.stdout.write(`  (${u.legacyFiles} vector files in the former one-file-per-vector layout are not used any more; tlearn cache clear removes them)\n`);
      process.stdout.write(`converted ONNX models: ${onnxCacheDir()}\nbackbone weights: ${modelsDir()}\n`);
    });
  cmd
    .command('clear')
    .description('Delete cached feature vectors and converted ONNX models (downloaded weights are kept; add --weights to delete them too).')
    .option('--weights', 'also delete downloaded and imported backbone weights')
    .action(async (o: any) => {
      const u = await clearFeaturesCache();
      await fs.rm(onnxCacheDir(), { recursive: true, force: true });
      if (o.weights) await fs.rm(modelsDir(), { recursive: true, force: true });
      process.stdout.write(`cleared ${u.entries} cached feature vectors (${(u.bytes / 1e6).toFixed(1)} MB) and converted ONNX models${o.weights ? ', and backbone weights' : ''}\n`);
    });
  return cmd;
}
