// What the Proxy-Wasm import functions (imports.ts) call into: the VM-wide host (logging, clock,
// timers, metrics, shared data and queues, outbound calls) and the effective context's view of
// its stream (header maps, buffers, flow control, local replies, properties). imports.ts turns
// guest pointers into these calls; the VM and the filters implement them.

import type { BufferType, MapType, MetricType, Status, StreamType } from './abi.ts';
import type { Pairs } from './pairs.ts';
import type { GrpcCallRequest } from './grpc-call.ts';

/** A header map (or gRPC metadata) as a plugin may read and, while it is writable, change. */
export interface HeaderMapAccess {
  pairs(): Pairs;
  get(key: string): string | undefined;
  /** False once the map has gone on (headers already sent): writes return BAD_ARGUMENT. */
  readonly writable: boolean;
  add(key: string, value: string): void;
  replace(key: string, value: string): void;
  remove(key: string): void;
  setPairs(pairs: Pairs): void;
}

/** A body, TCP data, call response or configuration buffer. */
export interface BufferAccess {
  bytes(): Buffer;
  /** Replaces `size` bytes at `start` with `data` (prepend, append, replace); false when read-only. */
  set(start: number, size: number, data: Buffer): boolean;
}

export interface LocalResponse {
  readonly status: number;
  readonly details: string;
  readonly body: Buffer;
  readonly headers: Pairs;
  /** -1 when not a gRPC reply (the ABI's `grpc_status` of 0xffffffff). */
  readonly grpcStatus: number;
}

/** The effective context's view: a stream context's stream, or a root context's call results. */
export interface ContextApi {
  headerMap(map: MapType): HeaderMapAccess | undefined;
  buffer(type: BufferType): BufferAccess | undefined;
  continueStream(type: StreamType): Status;
  closeStream(type: StreamType): Status;
  sendLocalResponse(r: LocalResponse): Status;
  /** A property's serialised value (strings as UTF-8, integers as 8-byte little-endian ...). */
  property(path: readonly string[]): Buffer | undefined;
  setProperty(path: readonly string[], value: Buffer): Status;
  /** proxy_get_status: the status of the HTTP/gRPC call whose callback is running. */
  callStatus(): { readonly code: number; readonly message: string } | undefined;
}

export interface HttpCallRequest {
  readonly cluster: string;
  readonly headers: Pairs;
  readonly body: Buffer;
  readonly trailers: Pairs;
  readonly timeoutMs: number;
}

export interface HostApi {
  log(level: number, message: string): void;
  /** The proxy's current level for the `wasm` component, in Proxy-Wasm's numbering. */
  logLevel(): number;
  /** Wall clock, nanoseconds since the epoch. */
  nowNs(): bigint;
  /** Monotonic clock, nanoseconds. */
  monotonicNs(): bigint;
  setTickPeriod(ms: number): void;
  /** The effective context (the one whose callback runs, or set by proxy_set_effective_context). */
  context(): ContextApi;
  setEffectiveContext(contextId: number): Status;
  done(): Status;
  /** `environment_variables` of the vm_config (never the host's own environment). */
  environment(): Pairs;

  defineMetric(type: MetricType, name: string): number | undefined;
  recordMetric(id: number, value: bigint): Status;
  incrementMetric(id: number, delta: bigint): Status;
  getMetric(id: number): bigint | undefined;

  getSharedData(key: string): { readonly value: Buffer; readonly cas: number } | undefined;
  setSharedData(key: string, value: Buffer, cas: number): Status;
  registerQueue(name: string): number;
  resolveQueue(vmId: string, name: string): number | undefined;
  enqueue(queueId: number, value: Buffer): Status;
  dequeue(queueId: number): { readonly status: Status; readonly value?: Buffer };

  httpCall(req: HttpCallRequest): { readonly status: Status; readonly callId?: number };
  /** gRPC unary call (`message` set) or stream; events go to the caller's root context. */
  grpcStart(req: GrpcCallRequest): { readonly status: Status; readonly token?: number };
  grpcSend(token: number, message: Buffer, endStream: boolean): Status;
  grpcCancel(token: number): Status;
  grpcClose(token: number): Status;
  callForeignFunction(name: string, args: Buffer): { readonly status: Status; readonly result?: Buffer };
}
