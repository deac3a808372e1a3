// proxy_grpc_call / proxy_grpc_stream: gRPC from a plugin to a cluster over the cluster's HTTP/2
// session (Envoy's AsyncClient): `POST /<service>/<method>` with application/grpc framing. Each
// event — initial metadata, every message, trailing metadata, the final status — is reported once,
// in that order; a reset, a refused connection or the timeout ends the call with UNAVAILABLE (14)
// or DEADLINE_EXCEEDED (4). cancel() resets the stream and reports nothing more; close() ends the
// local side (a stream's last message), as Envoy's close does.

import type { ClientHttp2Stream } from 'node:http2';
import { Status } from './abi.ts';
import type { Pairs } from './pairs.ts';
import type { ClusterManager } from '../upstream/types.ts';
import { type LongTimer, setLongTimeout } from '../long-timers.ts';
import { grpcPercentDecode } from '../grpc-message.ts';

export interface GrpcCallRequest {
  readonly cluster: string;
  readonly service: string;
  readonly method: string;
  readonly metadata: Pairs;
  /** Unary call: the one request message (sent with end of stream). Undefined for a stream. */
  readonly message?: Buffer;
  /** 0: no timeout. */
  readonly timeoutMs: number;
  /** :authority of the call; default the cluster name (Envoy's envoy_grpc.authority). */
  readonly authority?: string;
}

export interface GrpcEvents {
  onInitialMetadata(metadata: Pairs): void;
  onMessage(message: Buffer): void;
  onTrailingMetadata(metadata: Pairs): void;
  onClose(status: number, message: string): void;
}

export interface GrpcHandle {
  send(message: Buffer, endStream: boolean): Status;
  cancel(): void;
  close(): void;
}

const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

function metadataOf(h: Record<string, unknown>, skip: ReadonlySet<string>): Pairs {
  const out: Pairs = [];
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(':') || skip.has(k) || v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) out.push([k, String(x)]);
  }
  return out;
}

const RESPONSE_SKIP: ReadonlySet<string> = new Set(['content-type', 'grpc-status', 'grpc-message', 'grpc-encoding', 'grpc-accept-encoding']);

export function startGrpc(cm: ClusterManager, req: GrpcCallRequest, ev: GrpcEvents): { status: Status; handle?: GrpcHandle } {
  const cluster = cm.get(req.cluster);
  if (!cluster) return { status: Status.PARSE_FAILURE };
  const host = cluster.chooseHost({ hashKey: undefined });
  let stream: ClientHttp2Stream | undefined;
  let done = false;
  let cancelled = false;
  let pending: Array<{ m: Buffer | undefined; end: boolean }> = [];
  let timer: LongTimer | undefined;
  const finish = (status: number, message: string): void => {
    if (done) return;
    done = true;
    timer?.clear();
    if (!cancelled) ev.onClose(status, message);
  };
  if (req.timeoutMs > 0) {
    timer = setLongTimeout(() => {
      stream?.close();
      finish(DEADLINE_EXCEEDED, 'timeout');
    }, req.timeoutMs);
    timer.unref();
  }
  if (!host) {
    setImmediate(() => finish(UNAVAILABLE, 'no healthy upstream'));
  } else {
    cluster.http2Session(host).then(
      (session) => {
        if (done) return;
        const headers: Record<string, string> = { ':method': 'POST', ':path': `/${req.service}/${req.method}`, ':authority': req.authority ?? req.cluster, ':scheme': 'http', 'content-type': 'application/grpc', te: 'trailers' };
        if (req.timeoutMs > 0) headers['grpc-timeout'] = `${req.timeoutMs}m`;
        for (const [k, v] of req.metadata) headers[k.toLowerCase()] = v;
        const s = session.request(headers, { endStream: false });
        stream = s;
        let buf: Buffer = Buffer.alloc(0);
        let trailersOnly = false;
        s.on('response', (h) => {
          if (h['grpc-status'] !== undefined) {
            trailersOnly = true;
            ev.onInitialMetadata([]);
            ev.onTrailingMetadata(metadataOf(h, RESPONSE_SKIP));
            finish(Number(h['grpc-status']), grpcPercentDecode(String(h['grpc-message'] ?? '')));
            return;
          }
          if (!done && !cancelled) ev.onInitialMetadata(metadataOf(h, RESPONSE_SKIP));
        });
        s.on('data', (d: Buffer) => {
          buf = buf.length > 0 ? Buffer.concat([buf, d]) : d;
          while (buf.length >= 5) {
            const len = buf.readUInt32BE(1);
            if (buf.length < 5 + len) break;
            const m = buf.subarray(5, 5 + len);
            buf = buf.subarray(5 + len);
            if (!done && !cancelled) ev.onMessage(Buffer.from(m));
          }
        });
        s.on('trailers', (t) => {
          if (trailersOnly || done) return;
          ev.onTrailingMetadata(metadataOf(t, RESPONSE_SKIP));
          finish(Number(t['grpc-status'] ?? 2), grpcPercentDecode(String(t['grpc-message'] ?? '')));
        });
        s.on('close', () => finish(UNAVAILABLE, `stream closed (${s.rstCode})`));
        s.on('error', (e) => finish(UNAVAILABLE, e.message));
        if (req.message !== undefined) s.end(frame(req.message));
        else {
          for (const p of pending) {
            if (p.m === undefined) s.end();
            else if (p.end) s.end(frame(p.m));
            else s.write(frame(p.m));
          }
          pending = [];
        }
      },
      (e: unknown) => finish(UNAVAILABLE, e instanceof Error ? e.message : String(e)),
    );
  }
  const handle: GrpcHandle = {
    send: (m, end) => {
      if (done || req.message !== undefined) return Status.NOT_FOUND;
      if (!stream) pending.push({ m, end });
      else if (end) stream.end(frame(m));
      else stream.write(frame(m));
      return Status.OK;
    },
    cancel: () => {
      cancelled = true;
      stream?.close(8 /* CANCEL */);
      finish(1, 'cancelled');
    },
    close: () => {
      if (req.message !== undefined) return handle.cancel();
      if (stream && !stream.writableEnded) stream.end();
      else if (!stream) pending.push({ m: undefined, end: true });
    },
  };
  return { status: Status.OK, handle };
}
