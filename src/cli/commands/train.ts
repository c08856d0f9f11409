import path from 'node:path';
import { Command, Option } from 'commander';
import { PREPROCESS_MODES } from '../../backbones/preprocess.js';
import { DEFAULT_BACKBONE } from '../../backbones/zoo.js';
import { RESIZE_MODES } from '../../image/decode.js';
import { parseFractions } from '../../data/split.js';
import { HEADS } from '../../engine/head.js';
import { OPTIMIZERS } from '../../engine/optimizers.js';
import { trainFromFolder, type RunRequest } from '../../train/run.js';
import { expandExclude, resolveDataArg } from '../../datasets/resolve.js';
import { parseAugment } from '../../image/augment.js';
import { ARCHITECTURES, DEFAULT_ARCH } from '../../engine/architectures.js';
import { size } from '../options.js';
import { createLogger } from '../../util/log.js';
import { calibrationLines, confusedLines, metricsTable } from '../format.js';
import { EXACT_WEIGHTS_HELP } from '../tflite-options.js';
import { givenOptions, int, list, num, oneOf, positive, sizes, withSignals } from '../options.js';

export function trainCommand(): Command {
  return new Command('train')
    .summary('train a classifier on a folder of class folders')
    .description(
      'Train an image classifier by transfer learning: a frozen pretrained backbone turns every image into a feature ' +
        'vector (computed once, then read from the cache), a new softmax head is trained on the training split, ' +
        'the best epoch by validation loss is kept, and the held-out test split is evaluated once at the end. ' +
        'With --mode scratch, a small CNN is trained from scratch instead (onnxruntime computes the gradients).\n\n' +
        'DATA is a folder with one sub-folder of images per class, or with train/ and val/ (or valid/) and optional ' +
        'test/ folders of class folders. Without test/, the given val/ folder is held out as the test split. DATA can ' +
        'also be a dataset name (tlearn datasets list: caltech101, hymenoptera, tf_flowers, imagenette, or one you ' +
        'imported), downloaded and verified on first use; a path always wins over a name.\n\n' +
        'Writes to --out: metrics.json, history.json, split.json and model/ (a TF.js layers model of backbone + head ' +
        'with metadata.json), usable with `tlearn predict`, and options.json (the options, for --resume and --from).\n\n' +
        'Before training, the data is checked as `tlearn check` does (without decoding): training stops on identical files with different labels and on symbolic link loops unless --force is given.\n\n' +
        'Scratch and fine-tune training write a checkpoint at the end of every epoch; a run that was stopped (Ctrl-C stops it within a batch and writes a checkpoint too) or killed continues with `tlearn train --resume <run folder>`, with its recorded options and split, and ends with the same model as a run that was never stopped. ' +
        'A stopped transfer run continues the same way: the features it computed are in the cache, so only the rest are computed.',
    )
    .argument('[data]', 'dataset folder, or dataset name (tlearn datasets list); not needed with --resume or --from')
    .option('--exclude <classes>', 'comma-separated class folders to leave out; for a named dataset also a named list (caltech101: notebook)', list)
    .option('--split <fractions>', 'train,val,test fractions', parseFractions, [0.7, 0.15, 0.15])
    .addOption(new Option('--split-mode <mode>', 'stratified keeps class proportions in every split; random is a plain shuffle (the notebook\'s)').choices(['stratified', 'random']).default('stratified'))
    .option('--seed <n>', 'seed for the split, initial weights, shuffling and dropout', int('--seed', 0), 42)
    .addOption(
      new Option('--mode <mode>', 'transfer: frozen pretrained backbone + new head on cached features; finetune: that, then the top of the backbone trained too; scratch: a small CNN (--arch) trained from scratch')
        .choices(['transfer', 'finetune', 'scratch'])
        .default('transfer'),
    )
    .option('--unfreeze <N|layer|all>', 'finetune: how much of the backbone to train: its top N blocks, everything from a layer up, or all (default 8)')
    .option('--head-epochs <n>', 'finetune: epochs of the first stage, the head on cached features (default 3)', int('--head-epochs'))
    .option('--head-lr <rate>', "finetune: the first stage's learning rate (default: the optimizer's)", positive('--head-lr'))
    .option('--augment [spec]', 'scratch/finetune: data augmentation; spec e.g. "crop=0.6,flip,rotate=10,color=0.2" (that is the default)')
    .option('--tta', 'test-time augmentation for the test metrics: flips and centre crops averaged')
    .option('--no-calibrate', 'keep the raw probabilities: by default a temperature is fitted on the validation split (lowest log-loss) and folded into the final layer, so the model, predict and the exports give calibrated probabilities; the predicted class never changes')
    .option('--weights <file.h5>', "zoo backbone: use this Keras .h5 weights file (checked against Keras' hash where published) instead of the cache")
    .addOption(new Option('--arch <name>', `scratch: the CNN (${Object.keys(ARCHITECTURES).join(', ')})`).default(DEFAULT_ARCH))
    .option('--input-size <HxW>', 'scratch: image size fed to the CNN, e.g. 224 or 160x160', size('--input-size'))
    .option('--micro-batch <n>', 'scratch: images per onnxruntime run (memory vs speed; default 8 at 224x224, gradients are summed over --batch-size)', int('--micro-batch'))
    .addOption(new Option('--schedule <kind>', 'scratch/finetune: learning-rate schedule over all steps (default: constant for scratch, one-cycle for finetune)').choices(['constant', 'cosine', 'one-cycle']))
    .option('--progressive <sizes>', "scratch/finetune: progressive resizing: train the first epochs at these smaller sizes in turn (e.g. 128,160), then at the model's own, the epochs split evenly; validation stays at the model's size (needs global pooling before the head, as the zoo backbones and resnet-mini)", sizes('--progressive'))
    .option('--warmup <epochs>', 'scratch/finetune: raise the learning rate linearly over the first epochs, then follow --schedule (not with one-cycle, which warms up itself)', int('--warmup', 0))
    .addOption(new Option('--bn <mode>', "finetune: the unfrozen blocks' BatchNormalization: frozen keeps inference mode and the pretrained statistics; train normalises with batch statistics (per --micro-batch), trains gamma/beta and updates the moving statistics (default frozen)").choices(['frozen', 'train']))
    .option('--bn-momentum <m>', "scratch/finetune: momentum of the moving statistics of training-mode BatchNormalization (default: each layer's own, 0.99 in Keras, 0.999 in MobileNetV2)", num('--bn-momentum', 0, 1))
    .option('--bn-reestimate [images]', 'scratch/finetune: after training, measure the BatchNormalization statistics of the trained blocks anew on the training images (un-augmented; all of them, or this many)', int('--bn-reestimate'))
    .option('--ema <decay>', 'scratch/finetune: keep an exponential moving average of the weights (e.g. 0.999); validation, checkpoints and the result use the average', num('--ema', 0, 1))
    .option('--swa <epochs>', 'scratch/finetune: stochastic weight averaging: average the weights of the last N epochs (BatchNormalization statistics re-measured), kept if it validates better than the best epoch', int('--swa'))
    .option('--mixup <alpha>', 'scratch/finetune: mixup, each training image blended with another of its batch, weights ~ Beta(alpha, alpha), e.g. 0.2 (default off)', num('--mixup', 0))
    .option('--cutmix <alpha>', 'scratch/finetune: CutMix, a box of another image of the batch pasted in, area ~ Beta(alpha, alpha), e.g. 1.0; with --mixup, one or the other per batch (default off)', num('--cutmix', 0))
    .option('--backbone <name|folder|file.tflite>', 'zoo name (see `tlearn models list`), a TF.js layers model folder (also a Teachable Machine export), or a .tflite image model (float, uint8 or int8 quantized; features from its pooled layer before the classifier; transfer mode only)', DEFAULT_BACKBONE)
    .addOption(new Option('--preprocess <mode>', 'override the backbone\'s pixel preprocessing: tf = x/127.5-1, caffe = BGR minus ImageNet means, torch, unit = x/255, raw').argParser(oneOf('--preprocess', PREPROCESS_MODES)))
    .addOption(new Option('--resize <mode>', 'squash stretches to the input size (Keras load_img); center-crop keeps the aspect ratio and crops the middle').argParser(oneOf('--resize', RESIZE_MODES)))
    .option('--cut-at <layer>', 'for a local backbone: take features from this layer (global average pooled); for a .tflite backbone a tensor name, a unique part of one, or an operator number')
    .option('--dequantize', 'a quantized .tflite backbone: run it dequantized to float instead of with integer kernels (slower; to compare; its features are cached apart)')
    .option('--exact-weights', `${EXACT_WEIGHTS_HELP} (features cached apart)`)
    .option('--int8 [images]', 'transfer: extract features with an int8 version of the backbone (static post-training quantization, int8 weights per channel, calibrated on this many training images, default 300); faster on CPUs with integer kernels, features cached separately', int('--int8'))
    .addOption(new Option('--head <kind>', 'linear: one softmax Dense layer (the notebook\'s); mlp: Dense(--hidden, relu) + Dropout + softmax').argParser(oneOf('--head', HEADS)).default('linear'))
    .option('--hidden <units>', 'hidden units of the mlp head', int('--hidden'), 256)
    .option('--dropout <rate>', 'dropout rate (mlp head default 0.5; linear head default 0, applied to the features; finetune 0.2)', num('--dropout', 0, 1))
    .addOption(new Option('--optimizer <name>', 'optimizer').argParser(oneOf('--optimizer', OPTIMIZERS)).default('adam'))
    .option('--lr <rate>', 'learning rate (default: adam 0.001, sgd 0.01, rmsprop 0.001, adadelta 1.0; finetune: that for the head, from half to a tenth of it for the unfrozen blocks, top to bottom)', positive('--lr'))
    .option('--momentum <m>', 'momentum for sgd (default 0.9) and rmsprop (default 0)', num('--momentum', 0, 1))
    .option('--epochs <n>', 'training epochs (default: transfer 40, finetune and scratch 10)', int('--epochs'))
    .option('--batch-size <n>', 'training batch size (default 128; finetune 32)', int('--batch-size'))
    .option('--weight-decay <w>', 'decoupled weight decay on kernels (0 = off)', num('--weight-decay', 0), 0)
    .option('--label-smoothing <s>', 'label smoothing in [0, 1) (default 0; finetune 0.1)', num('--label-smoothing', 0, 1))
    .addOption(new Option('--class-weights <mode>', 'auto weights each class by n / (classes * count), for imbalanced data').choices(['auto', 'none']).default('none'))
    .option('--patience <epochs>', 'stop when val_loss has not improved for this many epochs (default: train all epochs)', int('--patience'))
    .addOption(new Option('--monitor <metric>', 'the validation number that picks the kept epoch and drives --patience (default val_loss; finetune val_acc)').choices(['val_loss', 'val_acc']))
    .option('--out <dir>', 'run folder (default runs/<timestamp>)')
    .option('--no-cache', 'do not read or write the features cache')
    .option('--threads <n>', 'onnxruntime threads for the backbone forward pass and the training steps (default: all cores); the images of training batches are made beside them by TLEARN_BATCH_WORKERS worker threads (default: a quarter of the cores, at least 1; 0: on the main thread)', int('--threads'))
    .option('--resume <run>', 'continue a stopped or killed run from its last checkpoint, with its recorded options and split (only --threads, --json and -q may be given with it)')
    .option('--from <run>', "repeat a run with its recorded options (flags given here override them) on the data as it is now, printing what changed in the data; DATA is optional")
    .option('--exclude-files <list>', 'leave these images out of the training and validation splits (never out of the test split): the CSV `tlearn check --labels --csv` writes, or one path per line, relative to the dataset folder; the split is made first, so the test split is the same as without the list, and the report says how many were left out and why')
    .option('--drop-label-issues', 'run `tlearn check --labels` first (same backbone and seed) and leave the images it flags out of the training and validation splits (never out of the test split)')
    .option('--force', 'train even when the data check finds identical files with different labels or symbolic link loops')
    .option('--json', 'print the final metrics as one JSON object on stdout (logs stay on stderr)')
    .option('-q, --quiet', 'no progress or logs on stderr')
    .action(async (data: string | undefined, o: any, cmd: Command) => {
      const log = createLogger({ quiet: o.quiet });
      const d = data === undefined ? undefined : await resolveDataArg(data, { logger: log });
      const r = await withSignals((signal) => trainFromFolder(givenOptions(cmd, o, {
        data: d?.folder,
        exclude: d ? expandExclude(o.exclude, d) : o.exclude,
        split: o.split,
        mode: o.mode,
        arch: o.arch,
        inputSize: o.inputSize,
        microBatch: o.microBatch,
        schedule: o.schedule,
        warmup: o.warmup,
        progressive: o.progressive,
        bn: o.bn,
        bnMomentum: o.bnMomentum,
        bnReestimate: o.bnReestimate,
        ema: o.ema,
        swa: o.swa,
        mixup: o.mixup,
        cutmix: o.cutmix,
        unfreeze: o.unfreeze,
        headEpochs: o.headEpochs,
        headLr: o.headLr,
        augment: parseAugment(o.augment),
        tta: o.tta,
        calibrate: o.calibrate,
        weights: o.weights,
        splitMode: o.splitMode,
        seed: o.seed,
        backbone: o.backbone,
        preprocessing: o.preprocess,
        resize: o.resize,
        cutAt: o.cutAt,
        dequantize: o.dequantize,
        exactWeights: o.exactWeights,
        int8: o.int8,
        head: o.head,
        hidden: o.hidden,
        dropout: o.dropout,
        optimizer: o.optimizer,
        lr: o.lr,
        momentum: o.momentum,
        epochs: o.epochs,
        batchSize: o.batchSize,
        weightDecay: o.weightDecay,
        labelSmoothing: o.labelSmoothing,
        classWeights: o.classWeights,
        patience: o.patience,
        monitor: o.monitor,
        out: o.out,
        cache: o.cache,
        threads: o.threads,
        force: o.force,
        excludeFiles: o.excludeFiles === undefined ? undefined : path.resolve(o.excludeFiles),
        dropLabelIssues: o.dropLabelIssues,
        resume: o.resume,
        from: o.from,
      }, log, signal) as RunRequest));
      const m = r.metrics;
      const text = [
        '',
        metricsTable([
          ['val', m.val],
          ['test', m.test],
        ]),
        '',
        ...calibrationLines(m.calibration),
        'most confused (test, true → predicted):',
        ...(confusedLines(m.test).length ? confusedLines(m.test) : ['  none']),
        '',
        ...(m.excludedFiles ? [`left out: ${(m.excludedFiles as { summary: string }).summary}`] : []),
        `timings: ${Object.entries(m.timings)
          .map(([k, v]) => `${k} ${v.toFixed(1)}s`)
          .join(', ')}`,
        `run folder: ${r.outDir}`,
        `report: ${r.report.html}`,
      ].join('\n');
      if (o.json) {
        log.info(text);
        process.stdout.write(`${JSON.stringify(m)}\n`);
      } else {
        process.stdout.write(`${text}\n`);
      }
    });
}
