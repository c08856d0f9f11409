/**
 * Which files are images: by content (the first bytes), for every format tlearn decodes — JPEG, PNG, GIF, WebP,
 * TIFF, AVIF and HEIF (whatever the installed sharp decodes), SVG, and BMP (tlearn's own decoder). The extension is
 * only a hint: a JPEG named .dat is used, text named .jpg is not. For files that are not images the content
 * is named where it is recognisable (text, HTML, PDF, Photoshop...), for a clearer reason.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Extensions of the formats tlearn reads (a hint for users and for tools; content decides). */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.gif', '.webp', '.bmp', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg'];

export type ImageFormat = 'jpeg' | 'png' | 'gif' | 'webp' | 'bmp' | 'tiff' | 'avif' | 'heif' | 'svg';

/** How many bytes sniffImageFormat looks at. */
export const HEAD_BYTES = 512;

const EXT_FORMAT: Record<string, ImageFormat> = {
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.jpe': 'jpeg',
  '.jfif': 'jpeg',
  '.png': 'png',
  '.gif': 'gif',
  '.webp': 'webp',
  '.bmp': 'bmp',
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.avif': 'avif',
  '.heic': 'heif',
  '.heif': 'heif',
  '.svg': 'svg',
};

export function hasImageExtension(file: string): boolean {
  return IMAGE_EXTENSIONS.includes(path.extname(file).toLowerCase());
}

/** The format a file's extension suggests, if it is an image extension. */
export function formatOfExtension(file: string): ImageFormat | undefined {
  return EXT_FORMAT[path.extname(file).toLowerCase()];
}

const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

/** The ISO base media (HEIF/AVIF) major and compatible brands, from the ftyp box. */
function ftypBrands(b: Uint8Array): string[] {
  if (b.length < 12 || ascii(b, 4, 8) !== 'ftyp') return [];
  const size = Math.min(b.length, (b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!);
  const brands = [ascii(b, 8, 12)];
  for (let o = 16; o + 4 <= size; o += 4) brands.push(ascii(b, o, o + 4));
  return brands;
}

/** Recognises an image by its first bytes (give at least HEAD_BYTES for SVG). */
export function sniffImageFormat(head: Uint8Array): ImageFormat | undefined {
  const b = head;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b.length >= 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 18 && b[0] === 0x42 && b[1] === 0x4d && [12, 16, 40, 52, 56, 64, 108, 124].includes(b[14]! | (b[15]! << 8)) && b[16] === 0 && b[17] === 0) return 'bmp';
  if (b.length >= 4 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 0x2a))) return 'tiff';
  const brands = ftypBrands(b);
  if (brands.some((x) => x === 'avif' || x === 'avis')) return 'avif';
  if (brands.some((x) => ['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1'].includes(x))) return 'heif';
  const text = Buffer.from(b).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(text)) return 'svg';
  return undefined;
}

/** What a file that is not an image seems to hold, for the skip reason ('text', 'an HTML page', ...), if recognisable. */
export function describeContent(head: Uint8Array): string | undefined {
  const b = head;
  if (!b.length) return undefined;
  const start = Buffer.from(b.subarray(0, 64)).toString('latin1');
  const known: Array<[RegExp, string]> = [
    [/^%PDF-/, 'a PDF document'],
    [/^8BPS/, 'a Photoshop (PSD) file'],
    [/^PK\x03\x04/, 'a ZIP archive'],
    [/^\x1f\x8b/, 'gzip data'],
    [/^\x00\x00\x00\x0cjP {2}/, 'a JPEG 2000 image (not supported)'],
    [/^\xff\x0a|^\x00\x00\x00\x0cJXL /, 'a JPEG XL image (not supported)'],
    [/^\x00\x00\x01\x00/, 'a Windows icon (not supported)'],
    [/^(II\*\x00|MM\x00\*).{4}CR/s, 'a camera raw file (not supported)'],
    [/^\x7fELF/, 'a program'],
  ];
  for (const [re, what] of known) if (re.test(start)) return what;
  const brands = ftypBrands(b);
  if (brands.length) return `a media file (${brands[0]!.trim()}; a video?)`;
  const text = Buffer.from(b).toString('utf8');
  if (/^\s*(<!doctype html|<html|<head|<body)/i.test(text)) return 'an HTML page';
  // mostly printable UTF-8 without NUL bytes: text
  if (!b.includes(0) && !text.slice(0, -4).includes('\uFFFD')) {
    const printable = [...text].filter((c) => c >= ' ' || c === '\n' || c === '\r' || c === '\t').length;
    if (printable / Math.max(1, [...text].length) > 0.95) return 'text';
  }
  return undefined;
}

/** The first bytes of a file (enough for sniffImageFormat). */
export async function readFileHead(file: string, n = HEAD_BYTES): Promise<Uint8Array> {
  const h = await fs.open(file, 'r');
  try {
    const buf = new Uint8Array(n);
    const { bytesRead } = await h.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await h.close();
  }
}
