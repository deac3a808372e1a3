// What both RBAC filters share around the engine: parsing the enforced and shadow rule sets of their
// configs (`rules`, `shadow_rules`; the xDS matcher forms are refused), and running them against one
// request or connection with Envoy's counting: the shadow engine first (never enforced), then the
// enforced one, their results recorded in the stream's dynamic metadata as Envoy writes them. Parsing returns errors with field paths; checking never throws.

import { joinPath, type ConfigError } from '../../../config/result.ts';
import { compileRbac, type RbacDecision, type RbacEngine } from './engine.ts';
import type { RbacInput } from './matchers.ts';
import { outcomeFor, type RbacStats } from './stats.ts';
import { setDynamicMetadata } from '../../../proxy/http/dynamic-metadata.ts';
import type { RBAC__Output } from '../../../generated/envoy/config/rbac/v3/RBAC.ts';

/** The engines of one filter config (or route override); undefined = that rule set is absent. */
export interface RbacEngines {
  /** Absent `rules`: nothing is enforced, every request or connection is allowed. */
  readonly engine: RbacEngine | undefined;
  readonly shadowEngine: RbacEngine | undefined;
}

interface RuleFields {
  readonly rules: RBAC__Output | null;
  readonly shadow_rules: RBAC__Output | null;
  readonly matcher: unknown;
  readonly shadow_matcher: unknown;
}

/** `rules` / `shadow_rules` -> engines; `matcher` / `shadow_matcher` are config errors naming the field. */
export function parseRbacEngines(msg: RuleFields, path: string, errors: ConfigError[]): RbacEngines {
  for (const f of ['matcher', 'shadow_matcher'] as const) {
    if (msg[f]) errors.push({ path: joinPath(path, f), reason: `${f} (the xDS matcher API form of RBAC rules) is not supported by legate; use ${f === 'matcher' ? 'rules' : 'shadow_rules'}` });
  }
  const compile = (rbac: RBAC__Output | null, field: string): RbacEngine | undefined => {
    if (!rbac) return undefined;
    const r = compileRbac(rbac, joinPath(path, field));
    if (r.ok) return r.value;
    errors.push(...r.errors);
    return undefined;
  };
  return { engine: compile(msg.rules, 'rules'), shadowEngine: compile(msg.shadow_rules, 'shadow_rules') };
}

/** Runs a shadow engine: counts shadow_allowed / shadow_denied and records the result; never enforced. */
export function checkShadow(engine: RbacEngine, input: RbacInput, stats: RbacStats, perRuleStats: boolean): void {
  const d = engine.evaluate(input);
  (d.allowed ? stats.shadowAllowed : stats.shadowDenied).inc();
  if (perRuleStats && d.policy !== undefined) stats.policy(d.policy, d.allowed ? 'shadow_allowed' : 'shadow_denied').inc();
  const o = outcomeFor(input.info);
  o.shadowEngineResult = d.allowed ? 'allowed' : 'denied';
  if (d.policy !== undefined) o.shadowEffectivePolicyId = d.policy;
  const k = stats.metadataKeys;
  setDynamicMetadata(input.info, stats.metadataNamespace, { [k.shadowResult]: o.shadowEngineResult, ...(d.policy !== undefined ? { [k.shadowPolicy]: d.policy } : {}) });
}

/** Runs the enforced engine: counts allowed / denied, records the result (and a LOG action's hint). */
export function checkEnforced(engine: RbacEngine, input: RbacInput, stats: RbacStats, perRuleStats: boolean): RbacDecision {
  const d = engine.evaluate(input);
  (d.allowed ? stats.allowed : stats.denied).inc();
  if (perRuleStats && d.policy !== undefined) stats.policy(d.policy, d.allowed ? 'allowed' : 'denied').inc();
  const o = outcomeFor(input.info);
  o.enforcedEngineResult = d.allowed ? 'allowed' : 'denied';
  if (d.policy !== undefined) o.enforcedEffectivePolicyId = d.policy;
  if (d.log !== undefined) o.accessLogHint = d.log;
  const k = stats.metadataKeys;
  setDynamicMetadata(input.info, stats.metadataNamespace, { [k.enforcedResult]: o.enforcedEngineResult, ...(d.policy !== undefined ? { [k.enforcedPolicy]: d.policy } : {}) });
  if (d.log !== undefined) setDynamicMetadata(input.info, 'envoy.common', { access_log_hint: d.log });
  return d;
}
