/**
 * Timing a .tflite model's ONNX forms (integer operators, QDQ, dequantized float) in one process run, rounds
 * interleaved so that a busy machine slows every form alike. Used by `npm run bench:tflite`; `bench:backbones`
 * can call `timeTfliteForms` for its table (with listTfliteBackbones / loadBackbone from src/).
 */
import * as ort from 'onnxruntime-node';
import { readTfliteFile, type TfliteForm } from '../src/backbones/tflite/load.js';
import { tfliteToOnnx } from '../src/onnx/tflite/convert.js';

/** A form; 'qlinear-exact' is 'qlinear' with weights that have a zero point kept exactly (--exact-weights) instead of requantized. */
export type TimedForm = TfliteForm | 'qlinear-exact';

export interface FormTiming {
  form: TimedForm;
  /** Median wall milliseconds per image over the rounds. */
  msPerImage: number;
  /** Median CPU milliseconds (user + system, this process) per image. */
  cpuMsPerImage: number;
  onnxBytes: number;
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function timeTfliteForms(
  file: string,
  o: { forms?: TimedForm[]; output?: 'model' | 'features'; batch?: number; threads?: number; rounds?: number } = {},
): Promise<FormTiming[]> {
  const forms = o.forms ?? ['qlinear', 'qlinear-exact', 'qdq', 'float'];
  const batch = o.batch ?? 32;
  const rounds = o.rounds ?? 7;
  const m = (await readTfliteFile(file)).model;
  const sessions = [];
  for (const form of forms) {
    const c = tfliteToOnnx(m, { form: form === 'qlinear-exact' ? 'qlinear' : form, exactWeights: form === 'qlinear-exact', output: o.output ?? 'features' });
    const s = await ort.InferenceSession.create(c.bytes, {
      intraOpNumThreads: o.threads ?? 0,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    sessions.push({ form, s, bytes: c.bytes.length, shape: c.inputSize });
  }
  const [h, w] = sessions[0]!.shape;
  const x = Float32Array.from({ length: batch * h * w * 3 }, (_, i) => (i * 7919) % 256);
  const feeds = (s: ort.InferenceSession) => ({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [batch, h, w, 3]) });
  for (const { s } of sessions) await s.run(feeds(s)); // warm-up
  const wall = new Map<TimedForm, number[]>(forms.map((f) => [f, []]));
  const cpu = new Map<TimedForm, number[]>(forms.map((f) => [f, []]));
  for (let r = 0; r < rounds; r++) {
    for (const { form, s } of r % 2 ? [...sessions].reverse() : sessions) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await s.run(feeds(s));
      const t = performance.now() - t0;
      const c = process.cpuUsage(c0);
      wall.get(form)!.push(t / batch);
      cpu.get(form)!.push((c.user + c.system) / 1000 / batch);
    }
  }
  for (const { s } of sessions) await s.release();
  return sessions.map(({ form, bytes }) => ({ form, msPerImage: median(wall.get(form)!), cpuMsPerImage: median(cpu.get(form)!), onnxBytes: bytes }));
}
