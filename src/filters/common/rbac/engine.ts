// The RBAC policy engine shared by the HTTP and network RBAC filters (Envoy's
// RoleBasedAccessControlEngineImpl): an envoy.config.rbac.v3.RBAC compiled once into an action and
// named policies; evaluation says whether the request or connection is allowed and which policy
// matched. Compiling returns Result errors with field paths; evaluating never throws.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { compilePermission, compilePrincipal, type RbacInput, type RbacMatcher } from './matchers.ts';
import type { RBAC__Output } from '../../../generated/envoy/config/rbac/v3/RBAC.ts';
import type { Policy__Output } from '../../../generated/envoy/config/rbac/v3/Policy.ts';

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface RbacDecision {
  readonly allowed: boolean;
  /** The policy that matched (the first in name order, as Envoy's std::map walk), or undefined. */
  readonly policy: string | undefined;
  /** LOG action only: whether the request should be logged (a policy matched). */
  readonly log: boolean | undefined;
}

interface CompiledPolicy {
  readonly name: string;
  readonly matches: RbacMatcher;
}

/** Compiled `rules` (or `shadow_rules`): immutable, shared by every stream of every worker config. */
export class RbacEngine {
  readonly action: RbacAction;
  /** Policy names in the order they are tried. */
  readonly policyNames: readonly string[];
  readonly #policies: readonly CompiledPolicy[];

  constructor(action: RbacAction, policies: readonly CompiledPolicy[]) {
    this.action = action;
    this.#policies = policies;
    this.policyNames = Object.freeze(policies.map((p) => p.name));
    Object.freeze(this);
  }

  /** The first policy (in name order) whose permissions and principals both match, or undefined. */
  matchedPolicy(input: RbacInput): string | undefined {
    for (const p of this.#policies) if (p.matches(input)) return p.name;
    return undefined;
  }

  /**
   * Envoy's handleAction: ALLOW allows when a policy matches, DENY denies when one matches, LOG
   * always allows and asks for the request to be logged when one matches.
   */
  evaluate(input: RbacInput): RbacDecision {
    const policy = this.matchedPolicy(input);
    const matched = policy !== undefined;
    switch (this.action) {
      case 'ALLOW':
        return { allowed: matched, policy, log: undefined };
      case 'DENY':
        return { allowed: !matched, policy, log: undefined };
      default:
        return { allowed: true, policy, log: matched };
    }
  }
}

/** Envoy's std::map<std::string, ...> order: byte-wise on the UTF-8 names. */
function byName(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function compilePolicy(name: string, p: Policy__Output, path: string, errors: ConfigError[]): CompiledPolicy {
  const at = (f: string): string => joinPath(path, f);
  const permissions = p.permissions ?? [];
  const principals = p.principals ?? [];
  if (permissions.length === 0) errors.push({ path: at('permissions'), reason: 'value must contain at least 1 item(s)' });
  if (principals.length === 0) errors.push({ path: at('principals'), reason: 'value must contain at least 1 item(s)' });
  if (p.condition) errors.push({ path: at('condition'), reason: 'CEL conditions (condition) are not supported by legate' });
  if (p.checked_condition) errors.push({ path: at('checked_condition'), reason: 'CEL conditions (checked_condition) are not supported by legate' });
  // A policy matches when any permission and any principal match.
  const perms = permissions.map((x, i) => compilePermission(x, at(`permissions[${i}]`), errors));
  const ids = principals.map((x, i) => compilePrincipal(x, at(`principals[${i}]`), errors));
  const matches: RbacMatcher = (input) => {
    let perm = false;
    for (const m of perms) {
      if (m(input)) {
        perm = true;
        break;
      }
    }
    if (!perm) return false;
    for (const m of ids) if (m(input)) return true;
    return false;
  };
  return { name, matches };
}

function actionOf(a: unknown): RbacAction | undefined {
  if (a === 'ALLOW' || a === 0 || a === undefined || a === null) return 'ALLOW';
  if (a === 'DENY' || a === 1) return 'DENY';
  if (a === 'LOG' || a === 2) return 'LOG';
  return undefined;
}

/** Compiles one envoy.config.rbac.v3.RBAC (`rules` / `shadow_rules`) found at `path`. */
export function compileRbac(rbac: RBAC__Output, path: string): Result<RbacEngine> {
  const errors: ConfigError[] = [];
  const action = actionOf(rbac.action);
  if (!action) errors.push({ path: joinPath(path, 'action'), reason: `value must be one of ALLOW, DENY, LOG (got ${String(rbac.action)})` });
  const opts = rbac.audit_logging_options;
  if (opts && (opts.logger_configs.length > 0 || (opts.audit_condition !== 'NONE' && (opts.audit_condition as unknown) !== 0))) {
    errors.push({ path: joinPath(path, 'audit_logging_options'), reason: 'RBAC audit logging is not supported by legate' });
  }
  const names = Object.keys(rbac.policies ?? {}).sort(byName);
  const policies = names.map((n) => compilePolicy(n, rbac.policies[n]!, joinPath(path, `policies["${n}"]`), errors));
  if (errors.length > 0 || !action) return { ok: false, errors };
  return ok(new RbacEngine(action, policies));
}

/**
 * Envoy's responseDetail: `rbac_access_denied_matched_policy[<id>]`, whitespace in the id replaced
 * by `_` so access-log fields stay one token; `none` when no policy matched.
 */
export function responseDetail(policy: string | undefined): string {
  return `rbac_access_denied_matched_policy[${policy === undefined ? 'none' : policy.replace(/[ \t\f\v\n\r]/g, '_')}]`;
}
