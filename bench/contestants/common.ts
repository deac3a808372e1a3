// Helpers the contestants share: finding a binary, waiting for a child's ports, and wrapping a
// started child as a Running (its process tree measured, stopped with a signal).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree, stopChild, waitForPort, type Spawned } from '../lib/procs.ts';
import type { Running } from './types.ts';

export const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}

export function running(child: Spawned, ports: Running['ports'], missing: Running['missing'], version: string, signal: NodeJS.Signals = 'SIGTERM', note?: string): Running {
  return { ports, missing, version, ...(note ? { note } : {}), pids: () => processTree(child.pid), stop: () => stopChild(child, signal) };
}

/** Waits for every port; on failure kills the child and rethrows. */
export async function ready(child: Spawned, ports: readonly number[]): Promise<void> {
  try {
    for (const p of ports) await waitForPort(p, child);
  } catch (e) {
    await stopChild(child, 'SIGKILL');
    throw e;
  }
}
