// Route and virtual host `rate_limits` -> the request's rate limit descriptors (Envoy's
// RateLimitPolicy actions), for the local rate limit filter to match against its configured
// descriptors and the rate limit filter to send to its service. Compiled once per RateLimit list and cached by object; an action that cannot
// produce its entry drops the whole descriptor, as in Envoy. Unsupported actions (metadata,
// extension...) never match, logged once.

import type { HeaderMap } from '../../proxy/http/headers.ts';
import type { StreamInfo } from '../../proxy/http/stream-info.ts';
import type { RouteEntry } from '../../proxy/http/route-types.ts';
import { compileHeaderMatchers, compileQueryParameterMatcher, parseQueryFirst, type HeaderPredicate, type QueryPredicate } from '../../proxy/http/matchers.ts';
import { wrapped } from '../../config/values.ts';
import { isIP } from 'node:net';
import type { RateLimit__Output, _envoy_config_route_v3_RateLimit_Action__Output as Action } from '../../generated/envoy/config/route/v3/RateLimit.ts';
import type { RouteAction__Output } from '../../generated/envoy/config/route/v3/RouteAction.ts';
import type { VirtualHost__Output } from '../../generated/envoy/config/route/v3/VirtualHost.ts';
import { logger } from '../../proxy/log.ts';
import { dynamicMetadataValue } from '../../proxy/http/dynamic-metadata.ts';

const log = logger('filter');

export type Entry = readonly [string, string];

/** Envoy's VhRateLimitsOptions: whether a route's virtual host `rate_limits` count too. */
export type VhRateLimits = 'OVERRIDE' | 'INCLUDE' | 'IGNORE';
/** Produces one entry, `null` to skip the action (skip_if_absent), or `undefined` to drop the descriptor. */
type ActionFn = (headers: HeaderMap, info: StreamInfo, route: RouteEntry) => Entry | null | undefined;

interface CompiledRateLimit {
  readonly stage: number;
  readonly actions: readonly ActionFn[];
}

const warned = new Set<string>();
function warnOnce(what: string): void {
  if (warned.has(what)) return;
  warned.add(what);
  log.warn(`rate limit action ${what} is not supported; descriptors using it never match`);
}

function compileAction(a: Action, path: string): ActionFn {
  switch (a.action_specifier) {
    case 'request_headers': {
      const r = a.request_headers!;
      const name = r.header_name.toLowerCase();
      const key = r.descriptor_key;
      const skip = r.skip_if_absent;
      return (h) => {
        const v = h.get(name);
        if (v === undefined || v === '') return skip ? null : undefined;
        return [key, v];
      };
    }
    case 'generic_key': {
      const g = a.generic_key!;
      const entry: Entry = [g.descriptor_key || 'generic_key', g.descriptor_value];
      return () => entry;
    }
    case 'header_value_match': {
      const m = a.header_value_match!;
      const preds = compileHeaderMatchers(m.headers, `${path}.header_value_match.headers`);
      // A matcher that cannot compile rejected the route table already (route-rate-limits.ts).
      if (!preds.ok) return () => undefined;
      const pred: HeaderPredicate | undefined = preds.value;
      const entry: Entry = [m.descriptor_key || 'header_match', m.descriptor_value];
      const expect = wrapped(m.expect_match, true);
      return (h) => ((pred ? pred(h) : true) === expect ? entry : undefined);
    }
    case 'query_parameter_value_match': {
      const m = a.query_parameter_value_match!;
      const preds: QueryPredicate[] = [];
      for (const [i, q] of m.query_parameters.entries()) {
        const r = compileQueryParameterMatcher(q, `${path}.query_parameter_value_match.query_parameters[${i}]`);
        if (!r.ok) return () => undefined; // as above: the route table rejected it
        preds.push(r.value);
      }
      const entry: Entry = [m.descriptor_key || 'query_match', m.descriptor_value];
      const expect = wrapped(m.expect_match, true);
      return (h) => {
        const q = parseQueryFirst(h.get(':path') ?? '');
        return preds.every((p) => p(q)) === expect ? entry : undefined;
      };
    }
    case 'remote_address':
      return (_h, info) => {
        const addr = info.downstreamRemote.address;
        return isIP(addr) ? ['remote_address', addr] : undefined;
      };
    case 'destination_cluster':
      return (h, info, route) => {
        const c = route.action.kind === 'route' ? route.action.pickCluster(h, info) : undefined;
        return c === undefined ? undefined : ['destination_cluster', c];
      };
    case 'metadata':
    case 'dynamic_metadata': {
      // Envoy's MetaDataAction: the string at the metadata key (dynamic metadata; route metadata is
      // not kept), else default_value, else skipped (skip_if_absent) or the descriptor dropped.
      const m = a.action_specifier === 'metadata' ? a.metadata! : { ...a.dynamic_metadata!, source: 'DYNAMIC', skip_if_absent: false };
      if (String(m.source) === 'ROUTE_ENTRY' || String(m.source) === '1') {
        warnOnce('metadata with source ROUTE_ENTRY');
        return () => undefined;
      }
      const ns = m.metadata_key?.key ?? '';
      const keys = (m.metadata_key?.path ?? []).map((s) => s.key ?? '');
      const key = m.descriptor_key;
      const dflt = m.default_value;
      const skip = m.skip_if_absent;
      return (_h, info) => {
        const v = dynamicMetadataValue(info, ns, keys);
        if (typeof v === 'string' && v !== '') return [key, v];
        if (dflt) return [key, dflt];
        return skip ? null : undefined;
      };
    }
    default:
      warnOnce(String(a.action_specifier));
      return () => undefined;
  }
}

const compiled = new WeakMap<readonly RateLimit__Output[], readonly CompiledRateLimit[]>();

function compileRateLimits(list: readonly RateLimit__Output[], path: string): readonly CompiledRateLimit[] {
  let c = compiled.get(list);
  if (!c) {
    c = list.map((rl, i) => ({ stage: wrapped(rl.stage, 0), actions: rl.actions.map((a, j) => compileAction(a, `${path}[${i}].actions[${j}]`)) }));
    compiled.set(list, c);
  }
  return c;
}

/** Appends the descriptors `list` produces at `stage`. */
function collect(list: readonly RateLimit__Output[], path: string, stage: number, headers: HeaderMap, info: StreamInfo, route: RouteEntry, out: Entry[][]): void {
  for (const rl of compileRateLimits(list, path)) {
    if (rl.stage !== stage) continue;
    const entries: Entry[] = [];
    let dropped = false;
    for (const act of rl.actions) {
      const e = act(headers, info, route);
      if (e === undefined) {
        dropped = true;
        break;
      }
      if (e !== null) entries.push(e);
    }
    if (!dropped && entries.length > 0) out.push(entries);
  }
}

/**
 * The request's descriptors at `stage`: from the route's `rate_limits`, then from its virtual
 * host's as `vhRateLimits` says (Envoy's VhRateLimitsOptions: OVERRIDE uses them only when the
 * route has no rate_limits, INCLUDE always, IGNORE never; the route's deprecated
 * include_vh_rate_limits: true means INCLUDE).
 */
export function requestDescriptors(route: RouteEntry | undefined, stage: number, vhRateLimits: VhRateLimits, headers: HeaderMap, info: StreamInfo): Entry[][] {
  if (!route || route.action.kind !== 'route') return [];
  const raw = route.action.raw as RouteAction__Output | undefined;
  const own = raw?.rate_limits ?? [];
  const vh = (route.virtualHost.raw as VirtualHost__Output | undefined)?.rate_limits ?? [];
  const out: Entry[][] = [];
  if (own.length > 0) collect(own, 'route.rate_limits', stage, headers, info, route, out);
  const mode = raw?.include_vh_rate_limits?.value === true ? 'INCLUDE' : vhRateLimits;
  if (vh.length > 0 && (mode === 'INCLUDE' || (mode === 'OVERRIDE' && own.length === 0))) collect(vh, 'virtual_host.rate_limits', stage, headers, info, route, out);
  return out;
}
