// Child process for test/features-store.test.ts: writes vectors i = start .. start+count-1 (every value = i)
// under content hash sha256("v<i>") in batches, printing "committed <n>" after each batch's transaction.
import { FeatureCache } from '../src/features/cache.js';
import { FeatureStore } from '../src/features/store.js';
import { sha256 } from '../src/util/hash.js';

const [root, start, count, batch, dim] = [process.argv[2]!, ...process.argv.slice(3, 7).map(Number)] as [string, number, number, number, number];
const cache = new FeatureCache('store-test', dim, root);
for (let s = start; s < start + count; s += batch) {
  const n = Math.min(batch, start + count - s);
  await cache.putMany(Array.from({ length: n }, (_, k) => [sha256(`v${s + k}`), new Float32Array(dim).fill(s + k)] as [string, Float32Array]));
  process.stdout.write(`committed ${s + n}\n`);
}
await FeatureStore.closeAll();
