// Access loggers: filter, format, and write one line per stream. File sinks are buffered
// fs.WriteStreams shared per path within the process; a write error is logged once and lines
// are dropped (never thrown on the request path). /dev/stdout and /dev/stderr use the process streams.

import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { logger as makeLogger } from '../log.ts';
import type { StreamInfo } from '../http/stream-info.ts';
import type { AccessLogConfig, AccessLogSink } from './config.ts';

export interface AccessLogger {
  log(info: StreamInfo): void;
  /** Flushes and releases the sink (the shared file closes when its last logger closes). */
  close(): Promise<void>;
}

const log = makeLogger('access_log');

interface SharedFile {
  readonly path: string;
  stream: fs.WriteStream;
  refs: number;
  failed: boolean;
}

const files = new Map<string, SharedFile>();

function openStream(shared: SharedFile): fs.WriteStream {
  const s = fs.createWriteStream(shared.path, { flags: 'a' });
  s.on('error', (e) => {
    if (!shared.failed) log.error(`access log file '${shared.path}': ${e.message}; dropping lines`);
    shared.failed = true;
  });
  return s;
}

function acquireFile(path: string): SharedFile {
  let f = files.get(path);
  if (!f) {
    f = { path, stream: undefined as unknown as fs.WriteStream, refs: 0, failed: false };
    f.stream = openStream(f);
    files.set(path, f);
  }
  f.refs++;
  return f;
}

function endStream(s: fs.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed || s.closed) return resolve();
    s.once('close', () => resolve());
    s.end();
  });
}

async function releaseFile(f: SharedFile): Promise<void> {
  f.refs--;
  if (f.refs > 0) return;
  if (files.get(f.path) === f) files.delete(f.path);
  await endStream(f.stream);
}

/** Reopens every shared access log file (log rotation: Envoy's /reopen_logs, SIGUSR1). */
export async function reopenAccessLogs(): Promise<void> {
  const old: fs.WriteStream[] = [];
  for (const f of files.values()) {
    old.push(f.stream);
    f.failed = false;
    f.stream = openStream(f);
  }
  await Promise.all(old.map(endStream));
}

function processStream(sink: AccessLogSink): Writable | undefined {
  if (sink.kind === 'stdout' || (sink.kind === 'file' && (sink.path === '/dev/stdout' || sink.path === '/proc/self/fd/1'))) return process.stdout;
  if (sink.kind === 'stderr' || (sink.kind === 'file' && (sink.path === '/dev/stderr' || sink.path === '/proc/self/fd/2'))) return process.stderr;
  return undefined;
}

export function createAccessLogger(cfg: AccessLogConfig): AccessLogger {
  const { formatter, filter } = cfg;
  const std = processStream(cfg.sink);
  if (std) {
    let closed = false;
    return {
      log(info) {
        if (closed || (filter && !filter.evaluate(info))) return;
        std.write(formatter.format(info));
      },
      async close() {
        closed = true;
      },
    };
  }
  const file = acquireFile((cfg.sink as { path: string }).path);
  let closed = false;
  return {
    log(info) {
      if (closed || file.failed || (filter && !filter.evaluate(info))) return;
      // The WriteStream queues while a write is in flight and flushes the queue with writev.
      file.stream.write(formatter.format(info));
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return releaseFile(file);
    },
  };
}
