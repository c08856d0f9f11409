import os from 'node:os';
import path from 'node:path';

/** Where tlearn keeps downloaded weights, converted models and the features cache: $TLEARN_HOME or ~/.cache/tlearn. */
export function tlearnHome(): string {
  const env = process.env.TLEARN_HOME;
  if (env && env.trim()) return path.resolve(env);
  return path.join(os.homedir(), '.cache', 'tlearn');
}
