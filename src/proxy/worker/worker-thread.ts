// A worker thread's entry: runs worker-main.ts on the thread's parentPort with its workerData.

import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from './messages.ts';
import { runWorker } from './worker-main.ts';

runWorker(workerData as WorkerInit, parentPort!);
