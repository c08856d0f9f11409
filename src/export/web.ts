/**
 * `tlearn export --format web`: a static folder that classifies entirely in the browser, from any static
 * file server: index.html (the try-it page of `tlearn serve`, running the model locally), classifier.js
 * (load(url), classify(image | canvas | Blob, { top })) with preprocess.js, the model as ONNX with
 * metadata.json, and onnxruntime-web's WebAssembly runtime copied from the installed package.
 */
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { LoadedClassifier } from '../classifier/load.js';
import { readRunInfo } from '../classifier/run-info.js';
import { PAGE_FILES, WEB_DIR, pageHtml } from '../serve/page.js';
import { writeFileAtomic } from '../util/fs.js';
import { ExportError, runDirOf, writeOnnxClassifier, type OnnxMetadata } from './onnx.js';

/** onnxruntime-web's files the page needs: the ES module bundle and its WebAssembly binary (+ worker glue). */
export const ORT_WEB_FILES = ['ort.wasm.bundle.min.mjs', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'];

/** The dist/ folder of the installed onnxruntime-web package. */
export function ortWebDist(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  } catch (e: any) {
    throw new ExportError(`onnxruntime-web is not installed (${e.message}); it is a dependency of tlearn: run npm install`);
  }
}

export interface WebExportResult {
  format: 'web';
  files: string[];
  metadata: OnnxMetadata;
}

export async function exportWeb(clf: LoadedClassifier, dir: string): Promise<WebExportResult> {
  const runDir = runDirOf(clf);
  if ([clf.source, runDir].some((p) => path.resolve(p) === path.resolve(dir))) throw new ExportError(`--out ${dir} is the run or model folder itself; choose a new folder`);
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  if (entries.length && !entries.includes('classifier.js')) throw new ExportError(`--out ${dir} exists and is not a tlearn web export; choose a new or empty folder`);
  const ortDir = ortWebDist();
  await fs.mkdir(path.join(dir, 'assets'), { recursive: true });
  await fs.mkdir(path.join(dir, 'ort'), { recursive: true });
  const info = await readRunInfo(clf);
  const name = path.basename(runDir);
  const metadata = await writeOnnxClassifier(clf, path.join(dir, 'model.onnx'), path.join(dir, 'metadata.json'), { name, test: info.test ?? undefined });
  const files = [path.join(dir, 'model.onnx'), path.join(dir, 'metadata.json')];
  const write = async (rel: string, data: string | Buffer) => {
    await writeFileAtomic(path.join(dir, rel), data);
    files.push(path.join(dir, rel));
  };
  await write('index.html', await pageHtml('local', name));
  for (const f of ['page.js', 'page.css']) await write(`assets/${f}`, await fs.readFile(path.join(WEB_DIR, f)));
  for (const f of Object.keys(PAGE_FILES).filter((f) => !f.startsWith('page.'))) await write(f, await fs.readFile(path.join(WEB_DIR, f)));
  for (const f of ORT_WEB_FILES) await write(`ort/${f}`, await fs.readFile(path.join(ortDir, f)));
  await write('README.md', readme(name, metadata));
  return { format: 'web', files, metadata };
}

function readme(name: string, m: OnnxMetadata): string {
  return `# ${name}: an image classifier that runs in the browser

Exported by tlearn ${m.tlearnVersion}. ${m.labels.length} classes; input ${m.inputSize.join('x')} (${m.resize}), ${m.preprocessingDescription}.

Serve this folder with any static file server (the page cannot be opened from file://), e.g.

    npx http-server .        # or: python3 -m http.server

and open index.html. To classify in your own page, copy this folder next to it and:

\`\`\`html
<script type="module">
  import { load, classify } from './${name}/classifier.js';
  await load('./${name}/');                       // model.onnx + metadata.json
  const img = document.querySelector('img');
  const { top, unknown } = await classify(img, { top: 3 });   // or a <canvas>, <video>, ImageBitmap, Blob
  console.log(unknown ? 'unknown' : top[0].label, top);
</script>
\`\`\`

Files: model.onnx (input NHWC float32, output probabilities), metadata.json (labels, input size, resize,
preprocessing, open-set threshold), classifier.js + preprocess.js, ort/ (onnxruntime-web ${ortVersion()}, WebAssembly).
`;
}

function ortVersion(): string {
  try {
    return createRequire(import.meta.url)(path.join(ortWebDist(), '..', 'package.json')).version;
  } catch {
    return '';
  }
}
