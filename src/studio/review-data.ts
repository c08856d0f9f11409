/**
 * What the Review page shows for a finished run, read from its run folder: the validation and test metrics
 * (metrics.json), each test image with its true and predicted class (test-predictions.csv) as paths inside the
 * project, the confusion matrix and the images with the highest loss. Photos moved or deleted since the run
 * are marked as gone rather than left out.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Metrics } from '../evaluate/metrics.js';
import { JobError } from './jobs.js';

export interface TestPrediction {
  /** Path inside the project, with '/' separators. */
  path: string;
  true: string;
  predicted: string;
  /** Probability of the predicted class. */
  probability: number;
  /** Probability of the true class. */
  trueProbability: number;
  /** -ln(probability of the true class). */
  loss: number;
  /** Still at that path in the project. */
  exists: boolean;
}

export interface SplitSummary {
  images: number;
  accuracy: number;
  balancedAccuracy: number;
  loss: number;
  perClass: Metrics['perClass'];
  confusion: number[][];
}

export interface RunReview {
  classes: string[];
  val: SplitSummary;
  test: SplitSummary;
  predictions: TestPrediction[];
  /** Indexes into predictions, highest loss first (at most 24). */
  topLoss: number[];
  createdAt?: string;
}

/** RFC 4180 rows (quoted fields with "" escapes, commas and newlines inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

function summary(m: Metrics): SplitSummary {
  return { images: m.n, accuracy: m.accuracy, balancedAccuracy: m.balancedAccuracy, loss: m.loss, perClass: m.perClass, confusion: m.confusion };
}

/** A path inside the project ('/'-separated), or undefined when it is outside. */
export function projectRelative(projectDir: string, file: string): string | undefined {
  const rel = path.relative(path.resolve(projectDir), path.resolve(file));
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return rel.split(path.sep).join('/');
}

export async function readRunReview(outDir: string, projectDir: string): Promise<RunReview> {
  let metrics: any;
  try {
    metrics = JSON.parse(await fs.readFile(path.join(outDir, 'metrics.json'), 'utf8'));
  } catch {
    throw new JobError(409, 'this run has no results yet: it has not finished (or it failed); open a finished run');
  }
  const csv = await fs.readFile(path.join(outDir, 'test-predictions.csv'), 'utf8').catch(() => '');
  const rows = parseCsv(csv);
  const header = rows.shift() ?? [];
  const col = (name: string) => header.indexOf(name);
  const [ip, it, ipr, iprob, itp] = ['path', 'true', 'predicted', 'probability', 'true_probability'].map(col) as [number, number, number, number, number];
  const realProject = await fs.realpath(projectDir).catch(() => path.resolve(projectDir));
  const predictions: TestPrediction[] = [];
  for (const r of rows) {
    if (r.length < header.length) continue;
    const rel = projectRelative(projectDir, r[ip]!) ?? projectRelative(realProject, r[ip]!);
    if (!rel) continue;
    const trueProbability = Number(r[itp]);
    predictions.push({
      path: rel,
      true: r[it]!,
      predicted: r[ipr]!,
      probability: Number(r[iprob]),
      trueProbability,
      loss: -Math.log(Math.max(trueProbability, 1e-15)),
      exists: existsSync(path.join(projectDir, rel)),
    });
  }
  const topLoss = predictions
    .map((p, i) => [p.loss, i] as const)
    .filter(([loss]) => loss > 0)
    .sort((a, b) => b[0] - a[0])
    .slice(0, 24)
    .map(([, i]) => i);
  return { classes: metrics.dataset?.classNames ?? metrics.test.perClass.map((c: any) => c.name), val: summary(metrics.val), test: summary(metrics.test), predictions, topLoss, createdAt: metrics.createdAt };
}
