// Every test file gets its own empty tlearn home, so caches never leak between files or into ~/.cache.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

process.env.TLEARN_HOME = mkdtempSync(path.join(os.tmpdir(), 'tlearn-test-home-'));
delete process.env.TLEARN_MIRROR;
