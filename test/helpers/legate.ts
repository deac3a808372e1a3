// Test helper: runs the real legate process (src/cli.ts on this Node) with a config written to a
// temp file, finds its admin port through --admin-address-path, and reads its stats and listeners.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
/** The launcher users run (`npm start`, the `legate` bin). */
export const LAUNCHER = fileURLToPath(new URL('../../bin/legate.js', import.meta.url));

export interface Legate {
  readonly proc: ChildProcess;
  readonly adminPort: number;
  readonly admin: string;
  /** Bound port of a listener by name (from /listeners?format=json). */
  listenerPort(name: string): Promise<number>;
  /** Counters and gauges from /stats?format=json. */
  stats(): Promise<Record<string, number>>;
  stderr(): string;
  stdout(): string;
  /** Sends a signal (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to completion (validate mode, bad flags…). */
export function runCli(args: readonly string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`legate ${args.join(' ')} did not exit in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export function writeConfig(config: unknown, ext: 'yaml' | 'json' = 'yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'legate-test-'));
  const file = join(dir, `bootstrap.${ext}`);
  writeFileSync(file, typeof config === 'string' ? config : ext === 'json' ? JSON.stringify(config) : stringify(config));
  return file;
}

/**
 * `entry`: the script node runs (default CLI, src/cli.ts); `env`: the process's environment (default
 * this one's); `gid`: the group it runs as (a sidecar's, which iptables rules leave alone).
 */
export async function startLegate(config: unknown, opts: { concurrency?: number; args?: readonly string[]; timeoutMs?: number; entry?: string; env?: NodeJS.ProcessEnv; gid?: number } = {}): Promise<Legate> {
  const file = writeConfig(config);
  const addrFile = join(file, '..', 'admin-address');
  const args = [opts.entry ?? CLI, '-c', file, '--admin-address-path', addrFile, '--concurrency', String(opts.concurrency ?? 1), '--drain-time-s', '2', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, ...(opts.gid !== undefined ? { gid: opts.gid } : {}) });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d));
  proc.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  while (!existsSync(addrFile) || readFileSync(addrFile, 'utf8') === '') {
    if (exitCode !== undefined) throw new Error(`legate exited (${exitCode}) before serving:\n${stderr}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`legate did not start in time:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const addr = readFileSync(addrFile, 'utf8').trim();
  const adminPort = Number(addr.slice(addr.lastIndexOf(':') + 1));
  const admin = `http://127.0.0.1:${adminPort}`;
  return {
    proc,
    adminPort,
    admin,
    async listenerPort(name) {
      const r = (await (await fetch(`${admin}/listeners?format=json`)).json()) as {
        listener_statuses: Array<{ name: string; local_address: { socket_address: { port_value: number } } }>;
      };
      const l = r.listener_statuses.find((s) => s.name === name);
      if (!l) throw new Error(`no listener ${name} in ${JSON.stringify(r)}`);
      return l.local_address.socket_address.port_value;
    },
    async stats() {
      const r = (await (await fetch(`${admin}/stats?format=json`)).json()) as { stats: Array<{ name?: string; value?: number }> };
      const out: Record<string, number> = {};
      for (const s of r.stats) if (s.name !== undefined && typeof s.value === 'number') out[s.name] = s.value;
      return out;
    },
    stderr: () => stderr,
    stdout: () => stdout,
    async stop(signal = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const c = await exited;
      clearTimeout(t);
      rmSync(join(file, '..'), { recursive: true, force: true });
      return c;
    },
  };
}
