// Per-stream lookup of the compiled retry_policy / hedge_policy, cached per raw proto object. Parsing
// lives in src/proxy/http/route-retry-policy.ts (re-exported here); the route table rejects bad policies at load.

import type { RetryPolicy__Output } from '../../../generated/envoy/config/route/v3/RetryPolicy.ts';
import type { HedgePolicy__Output } from '../../../generated/envoy/config/route/v3/HedgePolicy.ts';
import { parseHedgePolicy, parseRetryPolicy, type HedgePolicy, type RetryPolicy } from '../../../proxy/http/route-retry-policy.ts';

export {
  DEFAULT_BASE_INTERVAL_MS,
  EMPTY_RETRY_POLICY,
  parseHedgePolicy,
  parseRetryOn,
  parseRetryPolicy,
  RetryOn,
  type HedgePolicy,
  type ResetHeader,
  type RetryPolicy,
} from '../../../proxy/http/route-retry-policy.ts';

/** Compiled policies, per frozen raw proto object (route tables are shared by every stream). */
const retryCache = new WeakMap<object, RetryPolicy | null>();

/**
 * The compiled policy for a raw retry_policy, or undefined when none. An invalid policy (the route
 * table should have rejected it) disables retries rather than failing the request.
 */
export function retryPolicyFor(raw: unknown): RetryPolicy | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  let p = retryCache.get(raw);
  if (p === undefined) {
    const r = parseRetryPolicy(raw as RetryPolicy__Output, 'retry_policy');
    p = r.ok ? r.value : null;
    retryCache.set(raw, p);
  }
  return p ?? undefined;
}

const hedgeCache = new WeakMap<object, HedgePolicy | null>();

export function hedgePolicyFor(raw: unknown): HedgePolicy | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  let p = hedgeCache.get(raw);
  if (p === undefined) {
    const r = parseHedgePolicy(raw as HedgePolicy__Output, 'hedge_policy');
    p = r.ok ? r.value : null;
    hedgeCache.set(raw, p);
  }
  return p ?? undefined;
}
