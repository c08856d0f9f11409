import { describe, expect, it } from 'vitest';
import type { ImageFolder, LabelledImage } from '../src/data/discover.js';
import { parseFractions, splitDataset, splitToJson } from '../src/data/split.js';

function fakeFolder(counts: number[], predefined?: ImageFolder['predefined']): ImageFolder {
  const images: LabelledImage[] = counts.flatMap((n, label) => Array.from({ length: n }, (_, i) => ({ path: `/d/c${label}/${i}.jpg`, label })));
  return { root: '/d', classes: counts.map((_, i) => `c${i}`), images, skipped: [], excluded: [], warnings: [], predefined };
}

describe('splitDataset', () => {
  it('stratifies per class and never overlaps', () => {
    const ds = fakeFolder([100, 40, 7]);
    const s = splitDataset(ds, { seed: 1 });
    const count = (part: LabelledImage[], label: number) => part.filter((i) => i.label === label).length;
    expect([count(s.train, 0), count(s.val, 0), count(s.test, 0)]).toEqual([70, 15, 15]);
    expect([count(s.train, 1), count(s.val, 1), count(s.test, 1)]).toEqual([28, 6, 6]);
    expect(count(s.train, 2) + count(s.val, 2) + count(s.test, 2)).toBe(7);
    const paths = [...s.train, ...s.val, ...s.test].map((i) => i.path);
    expect(new Set(paths).size).toBe(147);
  });

  it('is reproducible with a seed and changes with another', () => {
    const ds = fakeFolder([50, 50]);
    const a = splitDataset(ds, { seed: 42 });
    const b = splitDataset(ds, { seed: 42 });
    const c = splitDataset(ds, { seed: 7 });
    expect(a.test.map((i) => i.path)).toEqual(b.test.map((i) => i.path));
    expect(a.test.map((i) => i.path)).not.toEqual(c.test.map((i) => i.path));
  });

  it("random mode cuts a plain shuffle like the notebook (6,209 → 4,346 / 931 / 932)", () => {
    const ds = fakeFolder(Array.from({ length: 97 }, (_, i) => 64 + (i < 1 ? 1 : 0)));
    expect(ds.images).toHaveLength(6209);
    const s = splitDataset(ds, { mode: 'random', seed: 42 });
    expect([s.train.length, s.val.length, s.test.length]).toEqual([4346, 931, 932]);
  });

  it('keeps a predefined split; without test/ the given val/ becomes the test split', () => {
    const base = fakeFolder([20, 20]);
    const withTest = splitDataset(fakeFolder([1], { train: base.images.slice(0, 30), val: base.images.slice(30, 35), test: base.images.slice(35) }));
    expect([withTest.train.length, withTest.val.length, withTest.test.length]).toEqual([30, 5, 5]);
    const noTest = splitDataset(fakeFolder([1], { train: base.images.slice(0, 34), val: base.images.slice(34) }), { seed: 3 });
    expect(noTest.test.map((i) => i.path)).toEqual(base.images.slice(34).map((i) => i.path));
    expect(noTest.train.length + noTest.val.length).toBe(34);
    expect(noTest.val.length).toBeGreaterThan(0);
    expect(noTest.note).toMatch(/held out as the test split/);
  });

  it('writes paths relative to the root with labels', () => {
    const ds = fakeFolder([10, 10]);
    const j = splitToJson(ds, splitDataset(ds));
    expect(j.counts.train).toBe(14);
    expect(j.counts.val + j.counts.test).toBe(6);
    expect(Math.abs(j.counts.val - j.counts.test)).toBeLessThanOrEqual(2);
    expect(j.train[0]![0]).toMatch(/^c[01]\/\d+\.jpg$/);
    expect(j.classes).toEqual(['c0', 'c1']);
  });
});

describe('parseFractions', () => {
  it('accepts fractions and percentages', () => {
    expect(parseFractions('0.7,0.15,0.15')).toEqual([0.7, 0.15, 0.15]);
    expect(parseFractions('80, 10, 10')).toEqual([0.8, 0.1, 0.1]);
  });
  it('rejects malformed input with a clear message', () => {
    expect(() => parseFractions('0.7,0.3')).toThrow(/three non-negative numbers/);
    expect(() => parseFractions('0.5,0.2,0.2')).toThrow(/must sum to 1/);
    expect(() => parseFractions('a,b,c')).toThrow(/three non-negative numbers/);
    expect(() => parseFractions('1,0,0')).toThrow(/non-zero/);
  });
});
