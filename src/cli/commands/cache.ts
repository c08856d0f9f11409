import { Command } from 'commander';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { clearFeaturesCache, featuresCacheUsage, featuresRoot } from '../../features/cache.js';
import { onnxCacheDir } from '../../runtime/inference.js';
import { modelsDir } from '../../backbones/model-cache.js';
import { probeCacheFile } from '../../image/probe-cache.js';
import { tlearnHome } from '../../util/home.js';
import { findTempFiles, sweepTempFiles } from '../../util/tempfiles.js';

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

export function cacheCommand(): Command {
  const cmd = new Command('cache')
    .summary('show or clear the caches')
    .description(
      'The features cache ($TLEARN_HOME/features: LMDB databases shared by every tlearn process, keyed by image content and backbone settings), converted ONNX models ($TLEARN_HOME/onnx), what `tlearn check` remembers ($TLEARN_HOME/checks), downloaded weights ($TLEARN_HOME/models), and temporary files that stopped processes left behind.',
    );
  cmd
    .command('info')
    .description('Show where the caches are, how much they hold, and temporary files left by stopped processes (removed by the next run or `tlearn cache clear`).')
    .action(async () => {
      const u = await featuresCacheUsage();
      const temps = await findTempFiles(tlearnHome());
      const stale = temps.filter((t) => t.stale);
      const live = temps.filter((t) => !t.stale);
      process.stdout.write(`features: ${featuresRoot()}: ${u.entries} vectors for ${u.extractors} backbone settings, ${mb(u.bytes)}\n`);
      if (u.legacyFiles) process.stdout.write(`  (${u.legacyFiles} vector files in the former one-file-per-vector layout are not used any more; tlearn cache clear removes them)\n`);
      process.stdout.write(`converted ONNX models: ${onnxCacheDir()}\nbackbone weights: ${modelsDir()}\ncheck results: ${path.dirname(probeCacheFile())}\n`);
      process.stdout.write(`temporary files: ${stale.length} left by stopped processes (${mb(stale.reduce((a, t) => a + t.bytes, 0))}), ${live.length} being written by running processes\n`);
      for (const t of stale) process.stdout.write(`  stale: ${t.path}\n`);
    });
  cmd
    .command('clear')
    .description('Delete cached feature vectors, converted ONNX models, check results and temporary files of stopped processes (downloaded weights are kept; add --weights to delete them too).  Run it while no other tlearn process is using the cache.')
    .option('--weights', 'also delete downloaded and imported backbone weights')
    .action(async (o: any) => {
      const swept = await sweepTempFiles(tlearnHome());
      const u = await clearFeaturesCache();
      await fs.rm(onnxCacheDir(), { recursive: true, force: true });
      await fs.rm(path.dirname(probeCacheFile()), { recursive: true, force: true });
      if (o.weights) await fs.rm(modelsDir(), { recursive: true, force: true });
      process.stdout.write(
        `cleared ${u.entries} cached feature vectors (${mb(u.bytes)}), converted ONNX models, check results${o.weights ? ', backbone weights' : ''} and ${swept.length} temporary file${swept.length === 1 ? '' : 's'} left by stopped processes\n`,
      );
    });
  return cmd;
}
