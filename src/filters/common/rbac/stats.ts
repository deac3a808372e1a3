// RBAC counters with Envoy's names (Filters::Common::RBAC::generateStats): `<prefix>rbac.` then the
// rules prefix for allowed/denied and the shadow rules prefix for shadow_allowed/shadow_denied, plus
// per-policy counters under `...policy.<name>.`. Also the per-stream record of what the engines decided,
// which Envoy keeps in dynamic metadata. Nothing here throws.

import type { Counter, StatsStore } from '../../../proxy/stats.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';

/** Envoy's statPrefixJoin: joins with a `.` unless the prefix is empty or already ends with one. */
export function statPrefixJoin(prefix: string, token: string): string {
  if (prefix === '') return token;
  return prefix.endsWith('.') ? prefix + token : `${prefix}.${token}`;
}

type PolicyStat = 'allowed' | 'denied' | 'shadow_allowed' | 'shadow_denied';

export class RbacStats {
  readonly allowed: Counter;
  readonly denied: Counter;
  readonly shadowAllowed: Counter;
  readonly shadowDenied: Counter;
  /** Where the engines' results go in dynamic metadata: the filter's name. */
  readonly metadataNamespace: string;
  /** The dynamic metadata keys, Envoy's: the rules prefixes then shadow_/enforced_ engine_result / effective_policy_id. */
  readonly metadataKeys: { readonly shadowResult: string; readonly shadowPolicy: string; readonly enforcedResult: string; readonly enforcedPolicy: string };
  readonly #store: StatsStore;
  readonly #policyPrefix: string;
  readonly #shadowPolicyPrefix: string;
  readonly #perPolicy = new Map<string, Counter>();

  /**
   * `prefix` is the owner's prefix: `http.<hcm stat_prefix>.` for the HTTP filter, the network
   * filter's `stat_prefix` for the network one; `metadataNamespace` the filter's name.
   */
  constructor(store: StatsStore, prefix: string, rulesPrefix: string, shadowRulesPrefix: string, metadataNamespace: string) {
    this.#store = store;
    this.metadataNamespace = metadataNamespace;
    this.metadataKeys = {
      shadowResult: `${shadowRulesPrefix}shadow_engine_result`,
      shadowPolicy: `${shadowRulesPrefix}shadow_effective_policy_id`,
      enforcedResult: `${rulesPrefix}enforced_engine_result`,
      enforcedPolicy: `${rulesPrefix}enforced_effective_policy_id`,
    };
    const base = statPrefixJoin(prefix, 'rbac.');
    const rules = statPrefixJoin(base, rulesPrefix);
    const shadow = statPrefixJoin(base, shadowRulesPrefix);
    this.allowed = store.counter(statPrefixJoin(rules, 'allowed'));
    this.denied = store.counter(statPrefixJoin(rules, 'denied'));
    this.shadowAllowed = store.counter(statPrefixJoin(shadow, 'shadow_allowed'));
    this.shadowDenied = store.counter(statPrefixJoin(shadow, 'shadow_denied'));
    this.#policyPrefix = statPrefixJoin(rules, 'policy.');
    this.#shadowPolicyPrefix = statPrefixJoin(shadow, 'policy.');
  }

  /** `...policy.<name>.<stat>` (track_per_rule_stats). */
  policy(name: string, stat: PolicyStat): Counter {
    const shadow = stat === 'shadow_allowed' || stat === 'shadow_denied';
    const key = `${shadow ? this.#shadowPolicyPrefix : this.#policyPrefix}${name}.${stat}`;
    let c = this.#perPolicy.get(key);
    if (!c) this.#perPolicy.set(key, (c = this.#store.counter(key)));
    return c;
  }
}

/**
 * What the RBAC filters decided for one stream or connection, for access logging to read; the
 * engines' results also go to dynamic metadata as Envoy writes them (check.ts).
 */
export interface RbacOutcome {
  shadowEngineResult?: 'allowed' | 'denied';
  shadowEffectivePolicyId?: string;
  enforcedEngineResult?: 'allowed' | 'denied';
  enforcedEffectivePolicyId?: string;
  /** LOG action: true when a policy matched (the request should be logged), false otherwise. */
  accessLogHint?: boolean;
}

const outcomes = new WeakMap<StreamInfo, RbacOutcome>();

/** The RBAC outcome recorded for this stream or connection, or undefined when no RBAC engine ran. */
export function rbacOutcome(info: StreamInfo): Readonly<RbacOutcome> | undefined {
  return outcomes.get(info);
}

/** The (mutable) outcome record of a stream, created on first use. */
export function outcomeFor(info: StreamInfo): RbacOutcome {
  let o = outcomes.get(info);
  if (!o) outcomes.set(info, (o = {}));
  return o;
}
