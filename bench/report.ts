/** What the bench scripts share: where ../shared's data is, the machine in words, and writing BENCHMARKS.md. */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const CALTECH = path.join(SHARED, 'datasets/caltech101/101_ObjectCategories');
export const MOBILENET = path.join(SHARED, 'models/mobilenet_v2_0.35_224_imagenet_notop');
export const EXCLUDE = 'BACKGROUND_Google,Motorbikes,airplanes,Faces_easy,Faces';

export const log = (s: string) => process.stderr.write(`${s}\n`);

export function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

/** Replaces what is between <!-- name:start --> and <!-- name:end --> in BENCHMARKS.md (appends the markers if absent). */
export async function writeBenchSection(name: string, body: string): Promise<void> {
  const file = path.join(ROOT, 'BENCHMARKS.md');
  const old = existsSync(file) ? await fs.readFile(file, 'utf8') : '# Benchmarks\n';
  const section = `<!-- ${name}:start -->\n${body}\n<!-- ${name}:end -->`;
  const re = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`);
  await fs.writeFile(file, re.test(old) ? old.replace(re, section) : `${old.trimEnd()}\n\n${section}\n`);
  log(`updated ${file}`);
}
