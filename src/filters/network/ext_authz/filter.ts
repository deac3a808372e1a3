// The network external authorization filter (Envoy's network ext_authz): each new connection is
// described in a CheckRequest (both peers' addresses and principals, the client certificate and SNI
// when asked) and held until the authorization service answers. OK, or an error with
// failure_mode_allow: the connection goes on to the next filters. Denied, or an error otherwise: it
// is closed (cx_closed). Envoy asks at the first byte; legate asks at connection time, when every
// attribute the request carries is already known, so server-first protocols are checked too.
// Stats: ext_authz.<stat_prefix>.{total,ok,denied,error,failure_mode_allowed,cx_closed,active}.

import { NetworkFilterStatus, type NetworkFilter, type NetworkFilterCallbacks, type NetworkFilterFactory } from '../filter.ts';
import type { RuntimeContext } from '../../registry.ts';
import type { Counter, Gauge } from '../../../proxy/stats.ts';
import { encodeTcpCheckRequest } from '../../common/ext_authz/check-request.ts';
import { checkOverGrpc } from '../../common/ext_authz/grpc-check.ts';
import { logger } from '../../../proxy/log.ts';
import type { NetworkExtAuthzConfig } from './config.ts';

const log = logger('filter');

interface Stats {
  readonly total: Counter;
  readonly ok: Counter;
  readonly denied: Counter;
  readonly error: Counter;
  readonly failureModeAllowed: Counter;
  readonly cxClosed: Counter;
  readonly active: Gauge;
}

export class NetworkExtAuthzFactory implements NetworkFilterFactory<NetworkExtAuthzConfig> {
  readonly #config: NetworkExtAuthzConfig;
  readonly #rt: RuntimeContext;
  readonly #stats: Stats;

  constructor(config: NetworkExtAuthzConfig, rt: RuntimeContext) {
    this.#config = config;
    this.#rt = rt;
    const c = (n: string): Counter => rt.stats.counter(`${config.statPrefix}${n}`);
    this.#stats = { total: c('total'), ok: c('ok'), denied: c('denied'), error: c('error'), failureModeAllowed: c('failure_mode_allowed'), cxClosed: c('cx_closed'), active: rt.stats.gauge(`${config.statPrefix}active`) };
  }

  create(_config: NetworkExtAuthzConfig, cb: NetworkFilterCallbacks): NetworkFilter {
    const config = this.#config;
    const stats = this.#stats;
    const cm = this.#rt.clusterManager;
    return {
      onNewConnection: () => {
        let message: Buffer;
        try {
          message = encodeTcpCheckRequest(config, cb.streamInfo);
        } catch (e) {
          log.warn(`ext_authz: could not encode the CheckRequest: ${e instanceof Error ? e.message : String(e)}`);
          stats.error.inc();
          if (config.failureModeAllow) return stats.failureModeAllowed.inc(), NetworkFilterStatus.Continue;
          stats.cxClosed.inc();
          cb.close('flush');
          return NetworkFilterStatus.StopIteration;
        }
        stats.total.inc();
        stats.active.inc();
        let settled = false;
        const call = checkOverGrpc(cm, config, message, (verdict) => {
          if (settled) return;
          settled = true;
          stats.active.dec();
          if (verdict?.kind === 'ok') {
            stats.ok.inc();
            return cb.continueReading();
          }
          if (verdict === undefined) {
            stats.error.inc();
            if (config.failureModeAllow) {
              stats.failureModeAllowed.inc();
              return cb.continueReading();
            }
          } else stats.denied.inc();
          stats.cxClosed.inc();
          cb.streamInfo.terminationDetails = verdict === undefined ? 'ext_authz_error' : 'ext_authz_denied';
          cb.close('flush');
        });
        // The client gave up first: the answer is not needed.
        cb.socket.once('close', () => {
          if (settled) return;
          settled = true;
          stats.active.dec();
          call.cancel();
        });
        return NetworkFilterStatus.StopIteration;
      },
    };
  }
}
