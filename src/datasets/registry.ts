/**
 * Reference datasets by name: where each publisher serves it, what the archive is, the hash it is checked
 * against, and the folder inside that holds the class folders. Where the publisher (or TensorFlow Datasets,
 * which records the same files) publishes a hash, the download must match it; where none is published, tlearn
 * records the SHA-256 at the first download and later downloads of the same URL must match that. Either way the
 * extracted folder must hold the expected number of classes and images.
 *
 * Users add their own entries (same fields) in $TLEARN_HOME/datasets/registry.json.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ExpectedHash } from '../util/download.js';
import { tlearnHome } from '../util/home.js';

export type ArchiveFormat = 'zip' | 'tar.gz' | 'tar';
export const ARCHIVE_FORMATS: ArchiveFormat[] = ['zip', 'tar.gz', 'tar'];

export interface DatasetEntry {
  name: string;
  title: string;
  description: string;
  homepage?: string;
  license?: string;
  /** The publisher's download URL. */
  url: string;
  /** The archive's file name (in $TLEARN_HOME/downloads while it downloads). */
  file: string;
  /** The archive's size in bytes, where known exactly. */
  bytes?: number;
  /** The size for people ("228.8 MB", "about 47 MB"). */
  size: string;
  /** The archive's hash where one is published, and who publishes it. */
  hash?: ExpectedHash & { source: string };
  format: ArchiveFormat;
  /** An archive inside the archive that holds the images (Caltech-101: a zip holding a tar.gz). */
  inner?: { path: string; format: ArchiveFormat };
  /** The folder inside the (inner) archive that holds the class folders (or train/ and val/ folders). */
  root: string;
  /** What tlearn finds in that folder: class folders and images. */
  expect?: { classes: number; images: number };
  /** Named lists of classes for --exclude (e.g. 'notebook'). */
  presets?: Record<string, { classes: string[]; description: string }>;
}

const NOTEBOOK_EXCLUDE = ['BACKGROUND_Google', 'Motorbikes', 'airplanes', 'Faces_easy', 'Faces'];

export const REGISTRY: DatasetEntry[] = [
  {
    name: 'caltech101',
    title: 'Caltech-101',
    description: 'Caltech-101 (Fei-Fei, Fergus, Perona 2004): 101 object categories and a background class, about 300 px',
    homepage: 'https://data.caltech.edu/records/mzrjq-6wc02',
    license: 'CC BY 4.0',
    url: 'https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1',
    file: 'caltech-101.zip',
    size: 'about 137 MB',
    format: 'zip',
    inner: { path: 'caltech-101/101_ObjectCategories.tar.gz', format: 'tar.gz' },
    root: '101_ObjectCategories',
    expect: { classes: 102, images: 9145 },
    presets: {
      notebook: { classes: NOTEBOOK_EXCLUDE, description: "the classic Keras transfer-learning notebook's exclusions: 97 classes, 6,209 images" },
    },
  },
  {
    name: 'hymenoptera',
    title: 'Hymenoptera (ants and bees)',
    description: "PyTorch's transfer-learning tutorial set: ants and bees, with its own train/ and val/ split",
    homepage: 'https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html',
    url: 'https://download.pytorch.org/tutorial/hymenoptera_data.zip',
    file: 'hymenoptera_data.zip',
    size: 'about 47 MB',
    format: 'zip',
    root: 'hymenoptera_data',
    expect: { classes: 2, images: 398 },
  },
  {
    name: 'tf_flowers',
    title: 'TensorFlow flowers',
    description: "TensorFlow's flower photos: daisy, dandelion, roses, sunflowers, tulips",
    homepage: 'https://www.tensorflow.org/datasets/catalog/tf_flowers',
    license: 'CC BY 2.0 (per photo, listed in LICENSE.txt)',
    url: 'https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz',
    file: 'flower_photos.tgz',
    bytes: 228_813_984,
    size: '228.8 MB',
    hash: { algorithm: 'sha256', value: '4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c', source: 'TensorFlow Datasets (url_checksums/tf_flowers.txt)' },
    format: 'tar.gz',
    root: 'flower_photos',
    expect: { classes: 5, images: 3670 },
  },
  {
    name: 'imagenette',
    title: 'Imagenette (160 px)',
    description: "fast.ai's Imagenette v2, 160 px: 10 easy ImageNet classes (WordNet ids as folder names), with train/ and val/",
    homepage: 'https://github.com/fastai/imagenette',
    license: 'Apache 2.0 (images: ImageNet terms)',
    url: 'https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz',
    file: 'imagenette2-160.tgz',
    bytes: 98_948_031,
    size: '98.9 MB',
    hash: { algorithm: 'sha256', value: '88daccb09b6fce93f45e6c09ddeb269cce705549e6bff322092a2a5a11489863', source: 'TensorFlow Datasets (url_checksums/imagenette.txt)' },
    format: 'tar.gz',
    root: 'imagenette2-160',
    expect: { classes: 10, images: 13394 },
  },
];

export class RegistryError extends Error {}

const NAME = /^[a-z0-9][a-z0-9_.-]*$/;

/** A dataset name: lower-case letters, digits, '_', '.', '-'; not a path. */
export function isDatasetName(s: string): boolean {
  return NAME.test(s) && s !== '.' && s !== '..';
}

export function userRegistryFile(): string {
  return path.join(tlearnHome(), 'datasets', 'registry.json');
}

function checkEntry(e: any, where: string): DatasetEntry {
  const bad = (msg: string) => new RegistryError(`${where}: ${msg}`);
  if (!e || typeof e !== 'object') throw bad('each entry must be an object');
  if (typeof e.name !== 'string' || !isDatasetName(e.name)) throw bad(`'name' must be lower-case letters, digits, '_', '.' or '-' (got ${JSON.stringify(e.name)})`);
  if (typeof e.url !== 'string' || !/^https?:\/\//.test(e.url)) throw bad(`${e.name}: 'url' must be an http(s) URL`);
  if (!ARCHIVE_FORMATS.includes(e.format)) throw bad(`${e.name}: 'format' must be one of ${ARCHIVE_FORMATS.join(', ')}`);
  if (typeof e.root !== 'string') throw bad(`${e.name}: 'root' (the folder inside the archive that holds the class folders; "" for the top) is required`);
  if (e.hash !== undefined && !(['sha256', 'md5'].includes(e.hash?.algorithm) && /^[0-9a-f]+$/i.test(e.hash?.value ?? ''))) throw bad(`${e.name}: 'hash' must be {"algorithm": "sha256"|"md5", "value": "<hex>"}`);
  if (e.inner !== undefined && !(typeof e.inner?.path === 'string' && ARCHIVE_FORMATS.includes(e.inner?.format))) throw bad(`${e.name}: 'inner' must be {"path": "<file in the archive>", "format": "tar.gz"|"tar"|"zip"}`);
  const file = typeof e.file === 'string' && e.file ? e.file : path.posix.basename(new URL(e.url).pathname) || `${e.name}.${e.format}`;
  return {
    title: e.name,
    description: '',
    size: typeof e.bytes === 'number' ? `${(e.bytes / 1e6).toFixed(1)} MB` : 'unknown',
    ...e,
    file,
    hash: e.hash ? { source: `${userRegistryFile()}`, ...e.hash } : undefined,
  };
}

/** The built-in entries plus the user's ($TLEARN_HOME/datasets/registry.json: a JSON array of entries). */
export async function loadRegistry(): Promise<DatasetEntry[]> {
  const file = userRegistryFile();
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return REGISTRY;
  }
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch (e) {
    throw new RegistryError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(list)) throw new RegistryError(`${file} must hold a JSON array of dataset entries`);
  const own = list.map((e, i) => checkEntry(e, `${file} entry ${i + 1}`));
  const builtin = new Set(REGISTRY.map((e) => e.name));
  for (const e of own) if (builtin.has(e.name)) throw new RegistryError(`${file}: '${e.name}' is a built-in dataset name; choose another`);
  return [...REGISTRY, ...own];
}

export async function findEntry(name: string): Promise<DatasetEntry | undefined> {
  const n = name.trim().toLowerCase();
  return (await loadRegistry()).find((e) => e.name === n);
}
