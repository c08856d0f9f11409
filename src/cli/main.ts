/** The tlearn command line: a thin shell over the library API. */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { InterruptedError } from '../util/interrupt.js';
import { checkCommand } from './commands/check.js';
import { cacheCommand } from './commands/cache.js';
import { compareCommand } from './commands/compare.js';
import { datasetsCommand } from './commands/datasets.js';
import { summaryCommand } from './commands/summary.js';
import { evaluateCommand } from './commands/evaluate.js';
import { extractCommand } from './commands/extract.js';
import { exportCommand } from './commands/export.js';
import { modelsCommand } from './commands/models.js';
import { predictCommand } from './commands/predict.js';
import { serveCommand } from './commands/serve.js';
import { studioCommand } from './commands/studio.js';
import { trainCommand } from './commands/train.js';
import { workerCommand } from './commands/worker.js';

export function buildProgram(): Command {
  const program = new Command('tlearn')
    .description('Turn a folder of labelled images into an accurate, deployable image classifier by transfer learning, fast on a CPU.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false, showGlobalOptions: false });
  program.addCommand(trainCommand());
  program.addCommand(checkCommand());
  program.addCommand(compareCommand());
  program.addCommand(predictCommand());
  program.addCommand(evaluateCommand());
  program.addCommand(exportCommand());
  program.addCommand(serveCommand());
  program.addCommand(studioCommand());
  program.addCommand(summaryCommand());
  program.addCommand(modelsCommand());
  program.addCommand(datasetsCommand());
  program.addCommand(extractCommand());
  program.addCommand(workerCommand());
  program.addCommand(cacheCommand());
  program.addHelpText(
    'after',
    '\nEnvironment:\n  TLEARN_HOME     cache folder for weights, datasets, features and converted models (default ~/.cache/tlearn)\n  TLEARN_MIRROR   base URL for downloads: replaces https://storage.googleapis.com, and https://<host> by <mirror>/<host>\n\nExamples:\n  tlearn train caltech101 --exclude notebook --out runs/caltech97\n  tlearn train ./photos --out runs/first\n  tlearn predict runs/first some-image.jpg\n  tlearn serve runs/first\n  tlearn studio ./photos --open',
  );
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e: any) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof InterruptedError) {
      process.stderr.write(`tlearn: ${e.message}${e.resumeCommand ? `\nto continue: ${e.resumeCommand}` : ''}\n`);
      process.exitCode = e.signal === 'SIGTERM' ? 143 : 130;
      return;
    }
    process.stderr.write(`tlearn: error: ${e?.message ?? e}\n`);
    if (process.env.TLEARN_DEBUG) process.stderr.write(`${e?.stack}\n`);
    process.exitCode = 1;
  }
}
