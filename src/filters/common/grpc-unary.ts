// One unary gRPC call from a filter to a service behind an envoy_grpc cluster (the ext_authz Check,
// the rate limit service's ShouldRateLimit): the reply's bytes, or undefined when the call failed
// (no such cluster, refused, reset, timed out, a status other than OK, no reply).

import type { ClusterManager } from '../../proxy/upstream/types.ts';
import { startGrpc } from '../../proxy/wasm/grpc-call.ts';

/** A parsed GrpcService with an envoy_grpc target. */
export interface GrpcServiceTarget {
  readonly cluster: string;
  /** :authority; empty: the cluster name. */
  readonly authority: string;
  readonly timeoutMs: number;
  readonly initialMetadata: ReadonlyArray<readonly [string, string]>;
}

/** Starts the call; `done` runs once, later (never from inside this call), unless cancelled. */
export function unaryGrpc(cm: ClusterManager, t: GrpcServiceTarget, service: string, method: string, message: Buffer, done: (reply: Buffer | undefined) => void): { cancel(): void } {
  let reply: Buffer | undefined;
  let cancelled = false;
  const finish = (r: Buffer | undefined): void => {
    if (!cancelled) done(r);
  };
  const started = startGrpc(
    cm,
    { cluster: t.cluster, service, method, metadata: t.initialMetadata.map(([k, v]) => [k, v]), message, timeoutMs: t.timeoutMs, ...(t.authority ? { authority: t.authority } : {}) },
    {
      onInitialMetadata() {},
      onMessage: (m) => void (reply ??= m),
      onTrailingMetadata() {},
      onClose: (status) => finish(status === 0 ? reply : undefined),
    },
  );
  const handle = started.handle;
  if (!handle) queueMicrotask(() => finish(undefined)); // no such cluster
  return {
    cancel: () => {
      cancelled = true;
      handle?.cancel();
    },
  };
}
