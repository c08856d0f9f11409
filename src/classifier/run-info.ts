/** What a shipped model's run folder says about it: test metrics (metrics.json) and report.html, when present. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LoadedClassifier } from './load.js';

export interface TestSummary {
  images: number;
  accuracy: number;
  top5: number;
  balancedAccuracy: number;
  macroF1: number;
}

export interface RunInfo {
  /** The folder that holds the model (its run folder for <run>/model, the .onnx file's folder). */
  dir: string;
  test: TestSummary | null;
  /** report.html on disk, if the run has one. */
  reportFile?: string;
}

/** The folder that may hold the run's metrics.json and report.html. */
export function runFolderOf(c: LoadedClassifier): string {
  if (c.onnx) return path.dirname(c.source);
  return path.basename(c.source) === 'model' ? path.dirname(c.source) : c.source;
}

export async function readRunInfo(c: LoadedClassifier): Promise<RunInfo> {
  const dir = runFolderOf(c);
  let metrics: any;
  try {
    metrics = JSON.parse(await fs.readFile(path.join(dir, 'metrics.json'), 'utf8'));
  } catch {
    metrics = undefined;
  }
  const t = metrics?.test;
  const reportFile = path.join(dir, 'report.html');
  const hasReport = await fs.stat(reportFile).then((s) => s.isFile(), () => false);
  return {
    dir,
    test: typeof t?.accuracy === 'number' ? { images: t.n, accuracy: t.accuracy, top5: t.top5, balancedAccuracy: t.balancedAccuracy, macroF1: t.macro?.f1 } : null,
    reportFile: hasReport ? reportFile : undefined,
  };
}
