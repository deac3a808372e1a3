// proxy_grpc_call / proxy_grpc_stream: gRPC from a plugin to a cluster over the cluster's HTTP/2
// session (Envoy's AsyncClient): `POST /<service>/<method>` with application/grpc framing. Each
// event -- initial metadata, every message, trailing metadata, the final status -- is reported once,
// in that order; a reset, a refused connection or the timeout ends the call with UNAVAILABLE (14)
// or DEADLINE_EXCEEDED (4). cancel() resets the stream and reports nothing more; close() ends the
// local side (a stream's last message), as Envoy's close does.

import { fieldOf, type H2ClientSession, type H2ClientStream, type H2ResponseSink } from '../http/h2/client-session.ts';
import { ErrorCode as H2Error } from '../http/h2/frames.ts';
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
const EMPTY = Buffer.alloc(0);
const DEADLINE_EXCEEDED = 4;

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** A header list ([name, value, ...]) as metadata: pseudo-headers and `skip` left out. */
function metadataOf(raw: readonly string[], skip: ReadonlySet<string>): Pairs {
  const out: Pairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.charCodeAt(0) !== 58 && !skip.has(k)) out.push([k, raw[i + 1]!]);
  }
  return out;
}

const RESPONSE_SKIP: ReadonlySet<string> = new Set(['content-type', 'grpc-status', 'grpc-message', 'grpc-encoding', 'grpc-accept-encoding']);

export function startGrpc(cm: ClusterManager, req: GrpcCallRequest, ev: GrpcEvents): { status: Status; handle?: GrpcHandle } {
  const cluster = cm.get(req.cluster);
  if (!cluster) return { status: Status.PARSE_FAILURE };
  const host = cluster.chooseHost({ hashKey: undefined });
  let session: H2ClientSession | undefined;
  let stream: H2ClientStream | undefined;
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
  const reset = (): void => {
    if (session && stream && !stream.closed) session.resetStream(stream, H2Error.CANCEL);
  };
  if (req.timeoutMs > 0) {
    timer = setLongTimeout(() => {
      reset();
      finish(DEADLINE_EXCEEDED, 'timeout');
    }, req.timeoutMs);
    timer.unref();
  }
  let buf: Buffer = Buffer.alloc(0);
  let trailersOnly = false;
  const sink: H2ResponseSink = {
    headers: (raw, end) => {
      const status = fieldOf(raw, 'grpc-status');
      if (status !== undefined) {
        trailersOnly = true;
        ev.onInitialMetadata([]);
        ev.onTrailingMetadata(metadataOf(raw, RESPONSE_SKIP));
        finish(Number(status), grpcPercentDecode(fieldOf(raw, 'grpc-message') ?? ''));
        return;
      }
      if (!done && !cancelled) ev.onInitialMetadata(metadataOf(raw, RESPONSE_SKIP));
      if (end) finish(UNAVAILABLE, 'stream ended without trailers');
    },
    data: (d, end) => {
      buf = buf.length > 0 ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 5) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 5 + len) break;
        const m = buf.subarray(5, 5 + len);
        buf = buf.subarray(5 + len);
        if (!done && !cancelled) ev.onMessage(Buffer.from(m));
      }
      if (end) finish(UNAVAILABLE, 'stream ended without trailers');
    },
    trailers: (raw) => {
      if (trailersOnly || done) return;
      ev.onTrailingMetadata(metadataOf(raw, RESPONSE_SKIP));
      finish(Number(fieldOf(raw, 'grpc-status') ?? 2), grpcPercentDecode(fieldOf(raw, 'grpc-message') ?? ''));
    },
    streamReset: (reason) => finish(UNAVAILABLE, reason),
    writable: () => {},
  };
  const send = (m: Buffer | undefined, end: boolean): void => {
    if (session && stream) session.sendData(stream, m === undefined ? EMPTY : frame(m), end);
  };
  if (!host) {
    setImmediate(() => finish(UNAVAILABLE, 'no healthy upstream'));
  } else {
    cluster.http2Session(host).then(
      (s) => {
        if (done) return;
        const head = [':method', 'POST', ':scheme', 'http', ':authority', req.authority ?? req.cluster, ':path', `/${req.service}/${req.method}`, 'content-type', 'application/grpc', 'te', 'trailers'];
        if (req.timeoutMs > 0) head.push('grpc-timeout', `${req.timeoutMs}m`);
        for (const [k, v] of req.metadata) head.push(k.toLowerCase(), v);
        stream = s.request(head, false, sink);
        if (!stream) return finish(UNAVAILABLE, 'session closed');
        session = s;
        if (req.message !== undefined) send(req.message, true);
        else for (const p of pending) send(p.m, p.end);
        pending = [];
      },
      (e: unknown) => finish(UNAVAILABLE, e instanceof Error ? e.message : String(e)),
    );
  }
  const handle: GrpcHandle = {
    send: (m, end) => {
      if (done || req.message !== undefined) return Status.NOT_FOUND;
      if (!stream) pending.push({ m, end });
      else send(m, end);
      return Status.OK;
    },
    cancel: () => {
      cancelled = true;
      reset();
      finish(1, 'cancelled');
    },
    close: () => {
      if (req.message !== undefined) return handle.cancel();
      if (!stream) pending.push({ m: undefined, end: true });
      else if (!stream.queueEnd && !stream.localEnded) send(undefined, true);
    },
  };
  return { status: Status.OK, handle };
}
