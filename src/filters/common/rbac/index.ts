// The RBAC policy engine shared by envoy.filters.http.rbac and envoy.filters.network.rbac:
// compile envoy.config.rbac.v3.RBAC into matchers, evaluate them, count with Envoy's stat names.

export { compileRbac, responseDetail, RbacEngine, type RbacAction, type RbacDecision } from './engine.ts';
export { compilePermission, compilePrincipal, NO_HEADERS, type RbacInput, type RbacMatcher } from './matchers.ts';
export { RbacStats, rbacOutcome, statPrefixJoin, type RbacOutcome } from './stats.ts';
export { checkEnforced, checkShadow, parseRbacEngines, type RbacEngines } from './check.ts';
