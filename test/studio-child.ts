// A studio in its own process, for the durability tests: prints its URL and token as one JSON line.
import { createStudioServer } from '../src/studio/index.js';

const s = await createStudioServer({ folder: process.argv[2]! });
process.stdout.write(`${JSON.stringify({ url: s.url, token: s.token })}\n`);
