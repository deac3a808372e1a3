// Parses envoy.extensions.filters.http.header_mutation.v3.HeaderMutation (the filter config) and
// HeaderMutationPerRoute (a route's `typed_per_filter_config`) into frozen, precompiled mutation
// lists. Each `append`/`remove` is compiled by the route-level HeaderParser (same formatter, same
// name rules); problems are Result errors naming e.g. `...mutations.request_mutations[2].append.header.key`.

import { fail, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { chainHeaderMutators, compileHeaderParser, type HeaderParser } from '../../../proxy/http/header-mutation.ts';
import type { HeaderMutator } from '../../../proxy/http/route-types.ts';
import type { HeaderValueOption__Output } from '../../../generated/envoy/config/core/v3/HeaderValueOption.ts';

export const HEADER_MUTATION_NAME = 'envoy.filters.http.header_mutation';
export const HEADER_MUTATION_TYPE = 'envoy.extensions.filters.http.header_mutation.v3.HeaderMutation';
export const HEADER_MUTATION_PER_ROUTE_TYPE = 'envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute';

// The decoded messages (proto-loader object form; src/generated has no types for these protos).
/** envoy.config.common.mutation_rules.v3.HeaderMutation: a oneof `action` of remove / append. */
export interface HeaderMutationRule__Output {
  readonly remove?: string;
  readonly append?: HeaderValueOption__Output | null;
  readonly action?: 'remove' | 'append';
}
export interface Mutations__Output {
  readonly request_mutations: readonly HeaderMutationRule__Output[];
  readonly response_mutations: readonly HeaderMutationRule__Output[];
}
export interface HeaderMutation__Output {
  readonly mutations: Mutations__Output | null;
  readonly most_specific_header_mutations_wins: boolean;
}
export interface HeaderMutationPerRoute__Output {
  readonly mutations: Mutations__Output | null;
}

/** One direction's mutations, compiled: `apply` runs them with Envoy's in-order semantics. */
export interface CompiledMutations {
  readonly request: HeaderMutator;
  readonly response: HeaderMutator;
  /** No request mutations: the filter can skip the request side. */
  readonly requestEmpty: boolean;
  readonly responseEmpty: boolean;
}

export interface HeaderMutationConfig extends CompiledMutations {
  /** Route levels are evaluated least specific first (the most specific level wins on overwrite). */
  readonly mostSpecificWins: boolean;
}

export type HeaderMutationPerRouteConfig = CompiledMutations;

/** One batch that HeaderParser.apply (removes, then values evaluated, then sets, then adds) runs exactly as Envoy's one-by-one order would. */
interface Batch {
  adds: HeaderValueOption__Output[];
  removes: string[];
  keys: Set<string>;
  /** Holds a value with formatter operators, which may read headers: later removes need a new batch. */
  dynamic: boolean;
}

const newBatch = (): Batch => ({ adds: [], removes: [], keys: new Set(), dynamic: false });

function rename(errors: readonly ConfigError[], from: string, to: string): ConfigError[] {
  return errors.map((e) => ({ path: e.path.startsWith(from) ? to + e.path.slice(from.length) : e.path, reason: e.reason }));
}

/**
 * Envoy applies mutations one by one, in order. HeaderParser applies a level as a batch, so
 * consecutive mutations are grouped (at config time) only while batching cannot change the
 * outcome: no header touched twice in a batch, a formatted value first in its batch (it sees the
 * headers as the earlier batches left them), and no remove after a formatted value.
 */
function compileList(list: readonly HeaderMutationRule__Output[], path: string, prefix: 'request' | 'response', errors: ConfigError[]): HeaderMutator {
  const batches: Batch[] = [];
  let cur = newBatch();
  const flush = (): void => {
    if (cur.adds.length + cur.removes.length > 0) batches.push(cur);
    cur = newBatch();
  };
  list.forEach((m, i) => {
    const p = `${path}[${i}]`;
    if (m.action === 'remove') {
      const name = m.remove ?? '';
      const r = compileHeaderParser([], [name], '', prefix);
      if (!r.ok) return void errors.push(...rename(r.errors, `${prefix}_headers_to_remove[0]`, joinPath(p, 'remove')));
      const key = name.toLowerCase();
      if (cur.dynamic || cur.keys.has(key)) flush();
      cur.removes.push(key);
      cur.keys.add(key);
      return;
    }
    if (m.action === 'append' && m.append) {
      const r = compileHeaderParser([m.append], [], '', prefix);
      if (!r.ok) return void errors.push(...rename(r.errors, `${prefix}_headers_to_add[0]`, joinPath(p, 'append')));
      const hv = m.append.header!; // compileHeaderParser refused a missing header
      const key = hv.key.toLowerCase();
      const dynamic = (hv.value !== '' ? hv.value : hv.raw_value.toString('utf8')).includes('%');
      if (cur.keys.has(key) || (dynamic && cur.adds.length + cur.removes.length > 0)) flush();
      cur.adds.push(m.append);
      cur.keys.add(key);
      cur.dynamic ||= dynamic;
      return;
    }
    errors.push({ path: p, reason: 'exactly one of fields [remove, append] must be set' });
  });
  flush();
  if (errors.length > 0) return chainHeaderMutators([]);
  const parsers: HeaderParser[] = [];
  for (const b of batches) {
    const r = compileHeaderParser(b.adds, b.removes, path, prefix);
    // Every entry compiled alone above; a batch of them cannot fail.
    if (r.ok) parsers.push(r.value);
    else errors.push(...r.errors);
  }
  return chainHeaderMutators(parsers);
}

function compileMutations(m: Mutations__Output | null, path: string, errors: ConfigError[]): CompiledMutations {
  const req = m?.request_mutations ?? [];
  const res = m?.response_mutations ?? [];
  const at = joinPath(path, 'mutations');
  return {
    request: compileList(req, joinPath(at, 'request_mutations'), 'request', errors),
    response: compileList(res, joinPath(at, 'response_mutations'), 'response', errors),
    requestEmpty: req.length === 0,
    responseEmpty: res.length === 0,
  };
}

/** The registry's parse hook: the filter config in an HCM's http_filters. */
export function parseHeaderMutation(message: unknown, ctx: { readonly path: string }): Result<HeaderMutationConfig> {
  if (!message || typeof message !== 'object') return fail(ctx.path, 'expected a HeaderMutation message');
  const msg = message as HeaderMutation__Output;
  const errors: ConfigError[] = [];
  const c = compileMutations(msg.mutations, ctx.path, errors);
  if (errors.length > 0) return { ok: false, errors };
  return ok(Object.freeze({ ...c, mostSpecificWins: msg.most_specific_header_mutations_wins === true }));
}

/** A route, virtual host or route configuration level's HeaderMutationPerRoute. */
export function parseHeaderMutationPerRoute(message: unknown, path: string): Result<HeaderMutationPerRouteConfig> {
  if (!message || typeof message !== 'object') return fail(path, 'expected a HeaderMutationPerRoute message');
  // The route table keeps only the unpacked message: a filter-level HeaderMutation here is a type mismatch.
  if ('most_specific_header_mutations_wins' in message) return fail(path, `expected ${HEADER_MUTATION_PER_ROUTE_TYPE}, got ${HEADER_MUTATION_TYPE}`);
  const errors: ConfigError[] = [];
  const c = compileMutations((message as HeaderMutationPerRoute__Output).mutations, path, errors);
  return errors.length > 0 ? { ok: false, errors } : ok(Object.freeze(c));
}
