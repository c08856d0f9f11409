import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { resolveDataArg } from '../../datasets/resolve.js';
import { createStudioServer } from '../../studio/server.js';
import { createLogger } from '../../util/log.js';
import { int } from '../options.js';

/** Opens a URL in the system browser (best effort: the URL is printed anyway). */
function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
    child.on('error', () => process.stderr.write(`tlearn studio: could not open a browser (${cmd}); open the address above yourself\n`));
    child.unref();
  } catch {
    // printed above
  }
}

export function studioCommand(): Command {
  return new Command('studio')
    .summary('a local web app: collect images, check and fix them, train, review, try and export')
    .description(
      [
        'Start tlearn studio, a page in your web browser for the whole job without typing commands: make classes and add ' +
          'images (drop files or whole folders, paste, or hold a button to record from the webcam), see what is wrong with ' +
          'them and fix it, train, look at the mistakes, try the model and download it.',
        'A project is simply a folder of class folders (one folder per class, the images inside), so the other tlearn ' +
          'commands keep working on it. Without a folder, the page lists your recent projects and makes new ones ' +
          '(in ~/tlearn-projects by default). The studio keeps its own notes (runs, history, undo log) in ' +
          '$TLEARN_HOME/studio, never inside your folder, except deleted images, which wait in the hidden folder ' +
          '.tlearn-trash inside the project so that Undo can bring them back.',
        'It prints an address with a secret token (http://127.0.0.1:<port>/?token=...): open that, in the browser of this ' +
          'computer. Only someone with the token can use the studio. It listens on this computer only unless --host says ' +
          'otherwise (then anyone on your network with the token can change your images). Ctrl-C stops it.',
      ].join('\n\n'),
    )
    .argument('[project]', 'project folder (a folder of class folders), or a dataset name (tlearn datasets list); none: choose in the page')
    .option('--port <port>', 'port (0: any free port)', int('--port', 0), 0)
    .option('--host <host>', 'address to listen on (the token is always required)', '127.0.0.1')
    .option('--backbone <folder>', 'also offer this TF.js layers model folder as a backbone on the Train page (and make it the default)')
    .option('--open', 'open the page in the system web browser')
    .option('-q, --quiet', 'no messages on stderr but the address')
    .action(async (project: string | undefined, o: any) => {
      const log = createLogger({ quiet: o.quiet });
      const folder = project ? (await resolveDataArg(project, { logger: log })).folder : undefined;
      const s = await createStudioServer({ folder, host: o.host, port: o.port, logger: log, jobs: o.backbone ? { backbones: [o.backbone] } : undefined });
      log.info(`tlearn studio${s.ctx.project ? ` for ${s.ctx.project.root}` : ''}: open this address in your browser (Ctrl-C stops):`);
      process.stdout.write(`${s.openUrl}\n`);
      if (o.open) openBrowser(s.openUrl);
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log.info(`${sig}: stopping the studio`);
          s.close().then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
