/** Small JPEG thumbnails as data: URLs, so a report is one file that needs no network and no other files. */
import sharp from 'sharp';
import { decodeBmp } from '../image/bmp.js';
import { HEAD_BYTES, sniffImageFormat } from '../image/formats.js';
import { promises as fs } from 'node:fs';

export async function thumbnailDataUrl(file: string, size = 96): Promise<string | undefined> {
  try {
    const buf = await fs.readFile(file);
    let img = sharp(buf, { failOn: 'none' });
    if (sniffImageFormat(buf.subarray(0, HEAD_BYTES)) === 'bmp') {
      const b = decodeBmp(buf);
      img = sharp(b.data, { raw: { width: b.width, height: b.height, channels: 3 } });
    }
    const jpg = await img.autoOrient().resize(size, size, { fit: 'cover' }).flatten({ background: '#fff' }).jpeg({ quality: 72 }).toBuffer();
    return `data:image/jpeg;base64,${jpg.toString('base64')}`;
  } catch {
    return undefined;
  }
}

/** Thumbnails for many files, a few at a time. */
export async function thumbnails(files: string[], size = 96): Promise<Array<string | undefined>> {
  const out: Array<string | undefined> = new Array(files.length);
  let i = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (i < files.length) {
        const k = i++;
        out[k] = await thumbnailDataUrl(files[k]!, size);
      }
    }),
  );
  return out;
}

/** Renders an SVG string to a PNG file (librsvg inside sharp). */
export async function svgToPng(svg: string, file: string, density = 144): Promise<void> {
  await sharp(Buffer.from(svg), { density }).png().toFile(file);
}
