/**
 * Layer groups ("blocks") of a backbone, bottom to top, for fine-tuning: MobileNetV2 block_N / expanded_conv,
 * MobileNet (v1) depthwise-separable blocks conv_block_N (conv_pad_N, conv_dw_N, conv_pw_N with their BN and
 * ReLU6), ResNet convX_blockY, VGG blockN and fcN, a stem and a top; any other layer is a group of its own.
 * `--unfreeze N` trains the top N groups that have weights; a layer name trains from that layer up; 'all'.
 */
import type { KerasTopology } from '../backbones/layers-model.js';
import { flatLayers } from '../backbones/surgery.js';

export { flatLayers };

export interface LayerGroup {
  name: string;
  layers: string[];
  /** Whether any layer in the group has weights. */
  weighted: boolean;
}

const WEIGHTED = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Dense', 'BatchNormalization', 'PReLU', 'LayerNormalization', 'Conv2DTranspose']);

const RULES: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [/^(block_\d+)_/, (m) => m[1]!],
  [/^conv_(?:pad|dw|pw)_(\d+)(?:_|$)/, (m) => `conv_block_${m[1]}`],
  [/^conv1$/, () => 'stem'],
  [/^(expanded_conv)_/, (m) => m[1]!],
  [/^(conv\d_block\d+)_/, (m) => m[1]!],
  [/^(block\d+)_/, (m) => m[1]!],
  [/^(Conv1|bn_Conv1|Conv1_relu|Conv1_pad)$/, () => 'stem'],
  [/^(conv1|pool1)_/, () => 'stem'],
  [/^(Conv_1|Conv_1_bn|out_relu)$/, () => 'top'],
];

export function groupOf(layer: string): string {
  for (const [re, f] of RULES) {
    const m = re.exec(layer);
    if (m) return f(m);
  }
  return layer;
}

export function layerGroups(topology: KerasTopology): LayerGroup[] {
  const groups: LayerGroup[] = [];
  for (const l of flatLayers(topology)) {
    const g = groupOf(l.name);
    let group = groups.find((x) => x.name === g);
    if (!group) {
      group = { name: g, layers: [], weighted: false };
      groups.push(group);
    }
    group.layers.push(l.name);
    if (WEIGHTED.has(l.className)) group.weighted = true;
  }
  return groups;
}

export class UnfreezeError extends Error {}

/** The groups to train for an --unfreeze value: a number of top groups, 'all', or a layer name (that layer upwards). */
export function groupsToUnfreeze(topology: KerasTopology, spec: string | number): LayerGroup[] {
  const groups = layerGroups(topology).filter((g) => g.weighted);
  if (spec === 'all') return groups;
  const n = typeof spec === 'number' ? spec : /^\d+$/.test(spec) ? Number(spec) : NaN;
  if (Number.isInteger(n)) {
    if (n < 0) throw new UnfreezeError(`--unfreeze must be >= 0`);
    return n === 0 ? [] : groups.slice(-n);
  }
  const name = String(spec).replace(/^from:/, '');
  const flat = flatLayers(topology).map((l) => l.name);
  const at = flat.indexOf(name);
  if (at < 0) throw new UnfreezeError(`--unfreeze: no layer named '${name}' in the backbone (groups: ${groups.map((g) => g.name).join(', ')})`);
  const from = new Set(flat.slice(at));
  return groups
    .map((g) => ({ ...g, layers: g.layers.filter((l) => from.has(l)) }))
    .filter((g) => g.layers.length);
}
