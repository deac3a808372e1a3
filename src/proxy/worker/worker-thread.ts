// A worker thread's entry: runs worker-main.ts on the thread's parentPort with its workerData.
// Loaded to fill the compile cache (src/compile-cache-prime.ts), it does nothing.

import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from './messages.ts';
import { runWorker } from './worker-main.ts';

if (parentPort && !process.env.LEGATE_PRIME_COMPILE_CACHE) runWorker(workerData as WorkerInit, parentPort);
