// Worker thread entry of parseInWorker (manifest-parse.ts): parse one file, post the result.
import { parentPort, workerData } from 'node:worker_threads';
import { parseManifest } from './manifest-parse.js';

const { text, maxDepth } = workerData as { text: string; maxDepth: number };
parentPort!.postMessage(parseManifest(text, maxDepth));
