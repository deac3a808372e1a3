// legate's own small WASI layer for Proxy-Wasm plugins (node:wasi cannot route fd_write into the
// proxy's log and is not a sandbox): what real SDKs import under `wasi_snapshot_preview1` and
// `wasi_unstable`. stdout lines are logged at info, stderr lines at error; clocks, randomness, the
// plugin's own environment_variables, no arguments, no files (fd_prestat_get says BADF, which ends
// wasi-libc's preopen scan). proc_exit throws ProcExit, which the VM treats as a trap.

import { randomFillSync } from 'node:crypto';
import { WasiErrno } from './abi.ts';
import { MemoryAccessError, type GuestMemory } from './memory.ts';
import type { Pairs } from './pairs.ts';

export class ProcExit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`the plugin called proc_exit(${code})`);
    this.code = code;
  }
}

export interface WasiHost {
  /** A complete line written to stdout (fd 1) or stderr (fd 2). */
  line(fd: 1 | 2, text: string): void;
  environment(): Pairs;
  nowNs(): bigint;
  monotonicNs(): bigint;
}

type WasiFn = (...args: Array<number | bigint>) => number | undefined;

const FILETYPE_CHARACTER_DEVICE = 2;

export function wasiImports(host: WasiHost, memory: () => GuestMemory): Record<string, WasiFn> {
  const pending: Record<1 | 2, string> = { 1: '', 2: '' };
  const envBytes = (): Buffer[] => host.environment().map(([k, v]) => Buffer.from(`${k}=${v}\0`, 'utf8'));
  const fns: Record<string, (...a: Array<number | bigint>) => number | undefined> = {
    fd_write: (fd, iovs, count, writtenOut) => {
      const f = Number(fd);
      if (f !== 1 && f !== 2) return WasiErrno.BADF;
      const m = memory();
      let text = '';
      let written = 0;
      for (let i = 0; i < Number(count); i++) {
        const base = Number(iovs) + i * 8;
        const len = m.u32(base + 4);
        text += m.string(m.u32(base), len);
        written += len;
      }
      const lines = (pending[f] + text).split('\n');
      pending[f] = lines.pop() ?? '';
      for (const l of lines) host.line(f, l);
      m.setU32(Number(writtenOut), written);
      return WasiErrno.SUCCESS;
    },
    fd_read: () => WasiErrno.BADF,
    fd_close: () => WasiErrno.BADF,
    fd_seek: () => WasiErrno.BADF,
    fd_fdstat_get: (fd, out) => {
      const f = Number(fd);
      if (f < 0 || f > 2) return WasiErrno.BADF;
      const m = memory();
      m.write(Number(out), new Uint8Array(24));
      m.write(Number(out), Uint8Array.of(FILETYPE_CHARACTER_DEVICE));
      return WasiErrno.SUCCESS;
    },
    fd_fdstat_set_flags: () => WasiErrno.BADF,
    fd_prestat_get: () => WasiErrno.BADF,
    fd_prestat_dir_name: () => WasiErrno.BADF,
    path_open: () => WasiErrno.NOTSUP,
    clock_time_get: (id, _precision, out) => {
      const c = Number(id);
      if (c !== 0 && c !== 1) return WasiErrno.NOTSUP;
      memory().setU64(Number(out), c === 0 ? host.nowNs() : host.monotonicNs());
      return WasiErrno.SUCCESS;
    },
    clock_res_get: (_id, out) => (memory().setU64(Number(out), 1000n), WasiErrno.SUCCESS),
    random_get: (ptr, len) => {
      const n = Number(len);
      if (n > 65536) return WasiErrno.INVAL;
      const b = Buffer.alloc(n);
      randomFillSync(b);
      memory().write(Number(ptr), b);
      return WasiErrno.SUCCESS;
    },
    environ_sizes_get: (countOut, sizeOut) => {
      const e = envBytes();
      memory().setU32(Number(countOut), e.length);
      memory().setU32(Number(sizeOut), e.reduce((n, b) => n + b.length, 0));
      return WasiErrno.SUCCESS;
    },
    environ_get: (arrayOut, bufOut) => {
      let at = Number(bufOut);
      envBytes().forEach((b, i) => {
        memory().setU32(Number(arrayOut) + i * 4, at);
        memory().write(at, b);
        at += b.length;
      });
      return WasiErrno.SUCCESS;
    },
    args_sizes_get: (argcOut, sizeOut) => {
      memory().setU32(Number(argcOut), 0);
      memory().setU32(Number(sizeOut), 0);
      return WasiErrno.SUCCESS;
    },
    args_get: () => WasiErrno.SUCCESS,
    sched_yield: () => WasiErrno.SUCCESS,
    // Go's wasip1 runtime imports it for sleeps; a plugin has no business sleeping in a callback.
    poll_oneoff: () => WasiErrno.NOSYS,
    proc_exit: (code) => {
      throw new ProcExit(Number(code));
    },
  };
  const out: Record<string, WasiFn> = {};
  for (const [name, fn] of Object.entries(fns)) {
    out[name] = (...args) => {
      try {
        return fn(...args);
      } catch (e) {
        if (e instanceof MemoryAccessError) return WasiErrno.FAULT;
        throw e;
      }
    };
  }
  return out;
}

export const WASI_MODULES: readonly string[] = ['wasi_snapshot_preview1', 'wasi_unstable'];
export const WASI_FUNCTIONS: ReadonlySet<string> = new Set(Object.keys(wasiImports({ line: () => undefined, environment: () => [], nowNs: () => 0n, monotonicNs: () => 0n }, () => ({}) as GuestMemory)));
