// Process plumbing for the side-by-side suite: spawn a child (optionally pinned to a CPU with
// taskset), wait for a TCP port to accept, walk a process tree through /proc (nginx master +
// worker, legate + its threads), sum CPU seconds and RSS over the tree, sample peak RSS while a
// run is in flight, and stop every child the suite started — even on error or Ctrl-C.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { cpuSeconds, rssBytes } from './measure.ts';

let tasksetOk: boolean | undefined;
export function hasTaskset(): boolean {
  tasksetOk ??= spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0;
  return tasksetOk;
}

/** CPU to pin a child to, or undefined when pinning is off. Set once by run.ts. */
export const pinning = { enabled: false };

const children = new Set<ChildProcess>();

export interface Spawned {
  readonly proc: ChildProcess;
  readonly pid: number;
  output(): string;
}

/** Spawns `cmd args` on `cpu` (via `taskset -c cpu`, which execs, so the pid is the command's). */
export function spawnPinned(cpu: number, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Spawned {
  const [c, a] = pinning.enabled ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, [...args]];
  const proc = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8192)));
  proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8192)));
  if (proc.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  return { proc, pid: proc.pid, output: () => out };
}

/** Resolves once 127.0.0.1:port accepts a connection; rejects if the child exits or on timeout. */
export async function waitForPort(port: number, child: Spawned, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`exited (${child.proc.exitCode ?? child.proc.signalCode}): ${child.output().trim().split('\n').slice(-3).join(' | ')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not accepting after ${timeoutMs} ms: ${child.output().trim().split('\n').slice(-3).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => resolve(s)); })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** pid and all its descendants (through /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { return; }
    for (const t of tasks) {
      let kids = '';
      try { kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8'); } catch { continue; }
      for (const k of kids.split(' ')) if (k.trim() !== '') walk(Number(k));
    }
  };
  walk(pid);
  return out;
}

const safe = (f: () => number): number => { try { return f(); } catch { return 0; } };
export const treeCpuSeconds = (pids: readonly number[]): number => pids.reduce((a, p) => a + safe(() => cpuSeconds(p)), 0);
export const treeRss = (pids: readonly number[]): number => pids.reduce((a, p) => a + safe(() => rssBytes(p)), 0);

/** Samples the summed RSS of `pids` every 100 ms until stopped; returns the peak in bytes. */
export function rssSampler(pids: readonly number[]): () => number {
  let peak = treeRss(pids);
  const t = setInterval(() => (peak = Math.max(peak, treeRss(pids))), 100);
  return () => { clearInterval(t); return Math.max(peak, treeRss(pids)); };
}

/** Stops one child: `signal`, then SIGKILL to the whole tree after `graceMs`. */
export async function stopChild(child: Spawned, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const tree = processTree(child.pid);
  const exited = new Promise<void>((r) => child.proc.once('exit', () => r()));
  child.proc.kill(signal);
  const t = setTimeout(() => killTree(tree), graceMs);
  await exited;
  clearTimeout(t);
  // Orphaned workers (nginx) die with the master on SIGTERM; make sure.
  for (const p of tree.slice(1)) try { process.kill(p, 0); process.kill(p, 'SIGKILL'); } catch { /* gone */ }
}

function killTree(pids: readonly number[]): void {
  for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
}

/** Last resort on exit: SIGKILL every child the suite started and their descendants. */
export function killAllSync(): void {
  for (const c of children) if (c.pid !== undefined) killTree(processTree(c.pid));
}
process.on('exit', killAllSync);
for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => { killAllSync(); process.exit(130); });
