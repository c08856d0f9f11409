import { promises as fs } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeDataset, makeTinyBackbone, runCli, tmpDir } from './helpers.js';

let data: string;
let backbone: string;
let runDir: string;
let home: string;

beforeAll(async () => {
  data = await makeDataset(tmpDir(), { classes: { red: 12, green: 12, blue: 12 }, seed: 3 });
  backbone = await makeTinyBackbone(tmpDir());
  runDir = path.join(tmpDir(), 'run');
  home = tmpDir('tlearn-cli-home-');
});

const cli = (args: string[]) => runCli(args, { TLEARN_HOME: home });

describe('tlearn CLI', () => {
  it('--help explains the commands and every train flag', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['train', 'check', 'predict', 'models', 'cache']) expect(top.stdout).toContain(c);
    const train = await cli(['train', '--help']);
    for (const flag of ['--exclude', '--split', '--split-mode', '--seed', '--backbone', '--preprocess', '--resize', '--head', '--hidden', '--dropout', '--optimizer', '--lr', '--momentum', '--epochs', '--batch-size', '--weight-decay', '--label-smoothing', '--class-weights', '--patience', '--out', '--no-cache', '--json', '--resume', '--from', '--force']) {
      expect(train.stdout, flag).toContain(flag);
    }
    const check = await cli(['check', '--help']);
    for (const flag of ['--exclude', '--split', '--split-mode', '--seed', '--input-size', '--near-distance', '--json', '--quiet']) expect(check.stdout, flag).toContain(flag);
    const compare = await cli(['compare', '--help']);
    for (const flag of ['--resume', '--from', '--force']) expect(compare.stdout, flag).toContain(flag);
    const predict = await cli(['predict', '--help']);
    for (const flag of ['--top', '--json', '--csv']) expect(predict.stdout).toContain(flag);
  });

  it('train --json prints one JSON object on stdout and logs on stderr', async () => {
    const r = await cli(['train', data, '--backbone', backbone, '--epochs', '15', '--batch-size', '8', '--lr', '0.02', '--out', runDir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(m.dataset.classes).toBe(3);
    expect(m.test.accuracy).toBeGreaterThan(0.8);
    expect(r.stderr).toMatch(/3 classes, 36 images/);
    expect(r.stderr).toMatch(/images per class: min 12 \(blue\), median 12, max 12/);
    expect(r.stderr).toMatch(/Epoch 15\/15 - /);
    expect(r.stderr).toMatch(/run folder: /);
  });

  it('predict prints top-k as text, JSON and CSV', async () => {
    const img = path.join(data, 'green', 'img_002.jpg');
    const text = await cli(['predict', runDir, img, '--top', '2']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/img_002\.jpg\n\s+\d+\.\d\d%\s+green\n\s+\d+\.\d\d%\s+\w+\n$/);
    const json = JSON.parse((await cli(['predict', runDir, img, '--json'])).stdout);
    expect(json.predictions[0].top).toHaveLength(3);
    const sum = json.predictions[0].top.reduce((a: number, t: any) => a + t.probability, 0);
    expect(sum).toBeLessThanOrEqual(1 + 1e-6);
    const csv = (await cli(['predict', runDir, img, '--csv', '--top', '1'])).stdout.trim().split('\n');
    expect(csv[0]).toBe('path,rank,label,probability,unknown');
    expect(csv[1]).toMatch(/img_002\.jpg,1,green,0\.\d+,(true|false)$/);
  });

  it('predict reports unreadable inputs and still predicts the rest; exits 1 when nothing could be predicted', async () => {
    const bad = path.join(tmpDir(), 'bad.png');
    await fs.writeFile(bad, 'garbage');
    const r = await cli(['predict', runDir, bad, path.join(data, 'red', 'img_000.jpg')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/skipped .*bad\.png: not an image: the content is text \(named \.png\)/);
    expect(r.stdout).toMatch(/img_000\.jpg/);
    const none = await cli(['predict', runDir, bad]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no image could be predicted/);
  });

  it('bad input gives a clear error and exit code 1, without a stack trace', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['train', '/no/such/folder'], /tlearn: error: dataset folder \/no\/such\/folder does not exist/],
      [['train', data, '--split', '0.5,0.5'], /--split expects three non-negative numbers/],
      [['train', data, '--epochs', '0'], /--epochs must be an integer >= 1, got '0'/],
      [['train', data, '--optimizer', 'lbfgs'], /--optimizer must be one of adam, sgd, rmsprop, adadelta/],
      [['train', data, '--exclude', 'purple'], /--exclude names 'purple', not a class/],
      [['train', data, '--backbone', 'no-such-net', '--out', tmpDir()], /unknown backbone 'no-such-net'/],
      [['predict', '/no/such/run', 'x.jpg'], /is not a run folder, model folder or \.onnx file/],
      [['bogus'], /unknown command 'bogus'/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('models list shows the zoo; cache info and clear work', async () => {
    const list = await cli(['models', 'list']);
    expect(list.stdout).toMatch(/mobilenet_v2_0\.35\s+224x224\s+1280/);
    expect(list.stdout).toContain('https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5');
    expect(list.stdout).toMatch(/vgg16 .* md5 64373286793e3c8b2b4e3219cbf3544b/);
    const info = await cli(['cache', 'info']);
    expect(info.stdout).toMatch(/features: .*: 36 vectors/);
    const clear = await cli(['cache', 'clear']);
    expect(clear.stdout).toMatch(/cleared 36 cached feature vectors/);
    expect((await cli(['cache', 'info'])).stdout).toMatch(/: 0 vectors/);
  });
});
