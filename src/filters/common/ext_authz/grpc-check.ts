// One envoy.service.auth.v3.Authorization/Check call over a cluster's HTTP/2 session, for both
// ext_authz filters: the answer decoded into a verdict, or undefined when the call failed (no such
// cluster, refused, reset, timed out, a status other than OK, an answer that does not decode).

import type { ClusterManager } from '../../../proxy/upstream/types.ts';
import { logger } from '../../../proxy/log.ts';
import { unaryGrpc, type GrpcServiceTarget } from '../grpc-unary.ts';
import { decodeCheckResponse, type CheckVerdict } from './check-request.ts';

export type { GrpcServiceTarget } from '../grpc-unary.ts';

const log = logger('filter');

/** Starts the call; `done` runs once, later (never from inside this call). */
export function checkOverGrpc(cm: ClusterManager, t: GrpcServiceTarget, message: Buffer, done: (v: CheckVerdict | undefined) => void): { cancel(): void } {
  return unaryGrpc(cm, t, 'envoy.service.auth.v3.Authorization', 'Check', message, (reply) => {
    if (reply === undefined) return done(undefined);
    try {
      done(decodeCheckResponse(reply));
    } catch (e) {
      log.debug(`ext_authz: undecodable CheckResponse: ${e instanceof Error ? e.message : String(e)}`);
      done(undefined);
    }
  });
}
