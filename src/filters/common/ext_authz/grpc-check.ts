// One envoy.service.auth.v3.Authorization/Check call over a cluster's HTTP/2 session, for both
// ext_authz filters: the answer decoded into a verdict, or undefined when the call failed (no such
// cluster, refused, reset, timed out, a status other than OK, an answer that does not decode).

import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import { startGrpc } from '../../../proxy/wasm/grpc-call.ts';
import { logger } from '../../../proxy/log.ts';
import { decodeCheckResponse, type CheckVerdict } from './check-request.ts';

const log = logger('filter');

export interface GrpcServiceTarget {
  readonly cluster: string;
  /** :authority; empty: the cluster name. */
  readonly authority: string;
  readonly timeoutMs: number;
  readonly initialMetadata: ReadonlyArray<readonly [string, string]>;
}

/** Starts the call; `done` runs once, later (never from inside this call). */
export function checkOverGrpc(cm: ClusterManager, t: GrpcServiceTarget, message: Buffer, done: (v: CheckVerdict | undefined) => void): { cancel(): void } {
  let reply: Buffer | undefined;
  let cancelled = false;
  const finish = (v: CheckVerdict | undefined): void => {
    if (!cancelled) done(v);
  };
  const started = startGrpc(
    cm,
    { cluster: t.cluster, service: 'envoy.service.auth.v3.Authorization', method: 'Check', metadata: t.initialMetadata.map(([k, v]) => [k, v]), message, timeoutMs: t.timeoutMs, ...(t.authority ? { authority: t.authority } : {}) },
    {
      onInitialMetadata() {},
      onMessage: (m) => void (reply ??= m),
      onTrailingMetadata() {},
      onClose: (status) => {
        if (status !== 0 || reply === undefined) return finish(undefined);
        try {
          finish(decodeCheckResponse(reply));
        } catch (e) {
          log.debug(`ext_authz: undecodable CheckResponse: ${e instanceof Error ? e.message : String(e)}`);
          finish(undefined);
        }
      },
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
