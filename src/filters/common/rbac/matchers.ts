// RBAC permissions and principals (envoy.config.rbac.v3.Permission / Principal) compiled once into
// predicates over one request or connection, with Envoy's semantics (matchers.cc). Kinds legate
// cannot evaluate (filter_state, matcher extensions, uri_template) are config errors
// naming the field; compiling never throws and a compiled predicate never throws either.

import { joinPath, type ConfigError } from '../../../config/result.ts';
import { wrapped } from '../../../config/values.ts';
import { compileHeaderMatcher, compileStringMatcher, type StringPredicate } from '../../../proxy/http/matchers.ts';
import { cidrContains, parseCidr, parseIp, type Cidr, type IpAddress } from '../../../proxy/listener/filter-chain-match-cidr.ts';
import { HeaderMap } from '../../../proxy/http/headers.ts';
import { compileMetadataMatcher } from '../../../proxy/http/metadata-matcher.ts';
import type { AddressInfo, StreamInfo } from '../../../proxy/http/stream-info.ts';
import type { Permission__Output } from '../../../generated/envoy/config/rbac/v3/Permission.ts';
import type { Principal__Output } from '../../../generated/envoy/config/rbac/v3/Principal.ts';
import type { CidrRange__Output } from '../../../generated/envoy/config/core/v3/CidrRange.ts';
import type { PathMatcher__Output } from '../../../generated/envoy/type/matcher/v3/PathMatcher.ts';

/** What a policy is matched against: the request headers (empty at L4) and the stream's info. */
export interface RbacInput {
  readonly headers: HeaderMap;
  readonly info: StreamInfo;
}

export type RbacMatcher = (input: RbacInput) => boolean;

/**
 * The headers an L4 (network filter) evaluation sees: none. Envoy's network RBAC matches against an
 * empty header map, so `header` rules behave as for a request without that header (a
 * `present_match: false` or an inverted presence check still matches) and `url_path` never matches.
 */
export const NO_HEADERS: HeaderMap = new HeaderMap();

const ALWAYS: RbacMatcher = () => true;
const NEVER: RbacMatcher = () => false;

function anyOf(list: readonly RbacMatcher[]): RbacMatcher {
  if (list.length === 1) return list[0]!;
  return (input) => {
    for (const m of list) if (m(input)) return true;
    return false;
  };
}

function allOf(list: readonly RbacMatcher[]): RbacMatcher {
  if (list.length === 1) return list[0]!;
  return (input) => {
    for (const m of list) if (!m(input)) return false;
    return true;
  };
}

// Addresses are parsed once per AddressInfo object (they live as long as the connection or request).
const parsedIps = new WeakMap<AddressInfo, IpAddress | null>();
function ipOf(a: AddressInfo): IpAddress | undefined {
  let ip = parsedIps.get(a);
  if (ip === undefined) parsedIps.set(a, (ip = parseIp(a.address) ?? null));
  return ip ?? undefined;
}

type AddressOf = (info: StreamInfo) => AddressInfo;

function compileCidr(r: CidrRange__Output | null | undefined, path: string, errors: ConfigError[], addressOf: AddressOf): RbacMatcher {
  if (!r) {
    errors.push({ path, reason: 'value is required' });
    return NEVER;
  }
  // An absent prefix_len is 0, as in Envoy (CidrRange::create): the whole address family.
  const c: Cidr | string = parseCidr(r.address_prefix, wrapped(r.prefix_len, 0));
  if (typeof c === 'string') {
    errors.push({ path, reason: c });
    return NEVER;
  }
  return ({ info }) => {
    const ip = ipOf(addressOf(info));
    return ip !== undefined && cidrContains(c, ip);
  };
}

function compileString(m: Parameters<typeof compileStringMatcher>[0], path: string, errors: ConfigError[]): StringPredicate | undefined {
  const r = compileStringMatcher(m, path);
  if (r.ok) return r.value;
  errors.push(...r.errors);
  return undefined;
}

/** Envoy's PathMatcher: the `:path` without query and fragment; no `:path` never matches. */
function compileUrlPath(m: PathMatcher__Output | null | undefined, path: string, errors: ConfigError[]): RbacMatcher {
  if (!m || m.rule !== 'path') {
    errors.push({ path: joinPath(path, 'path'), reason: 'value is required' });
    return NEVER;
  }
  const test = compileString(m.path ?? null, joinPath(path, 'path'), errors);
  if (!test) return NEVER;
  return ({ headers }) => {
    const p = headers.get(':path');
    if (p === undefined) return false;
    let end = p.length;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c === 0x3f /* ? */ || c === 0x23 /* # */) {
        end = i;
        break;
      }
    }
    return test(end === p.length ? p : p.slice(0, end));
  };
}

function compileHeader(m: Parameters<typeof compileHeaderMatcher>[0] | null | undefined, path: string, errors: ConfigError[]): RbacMatcher {
  if (!m) {
    errors.push({ path, reason: 'value is required' });
    return NEVER;
  }
  const r = compileHeaderMatcher(m, path);
  if (!r.ok) {
    errors.push(...r.errors);
    return NEVER;
  }
  const pred = r.value;
  return ({ headers }) => pred(headers);
}

function unsupported(path: string, what: string, errors: ConfigError[]): RbacMatcher {
  errors.push({ path, reason: `${what} is not supported by legate` });
  return NEVER;
}

const MAX_PORT = 65535;

/** One Permission (the `rule` oneof) -> predicate; problems are pushed to `errors` with field paths. */
export function compilePermission(p: Permission__Output, path: string, errors: ConfigError[]): RbacMatcher {
  const at = (f: string): string => joinPath(path, f);
  switch (p.rule) {
    case 'and_rules':
    case 'or_rules': {
      const rules = p[p.rule]?.rules ?? [];
      const list = rules.map((r, i) => compilePermission(r, at(`${p.rule}.rules[${i}]`), errors));
      // Envoy: an empty AND set matches everything, an empty OR set nothing.
      if (list.length === 0) return p.rule === 'and_rules' ? ALWAYS : NEVER;
      return p.rule === 'and_rules' ? allOf(list) : anyOf(list);
    }
    case 'not_rule': {
      if (!p.not_rule) return unsupported(at('not_rule'), 'an empty not_rule', errors);
      const inner = compilePermission(p.not_rule, at('not_rule'), errors);
      return (input) => !inner(input);
    }
    case 'any':
      // `any: false` is rejected by PGV (const true) in Envoy; the decoder checks it.
      return ALWAYS;
    case 'header':
      return compileHeader(p.header, at('header'), errors);
    case 'url_path':
      return compileUrlPath(p.url_path, at('url_path'), errors);
    case 'destination_ip':
      return compileCidr(p.destination_ip, at('destination_ip'), errors, (info) => info.downstreamLocal);
    case 'destination_port': {
      const port = p.destination_port ?? 0;
      if (port > MAX_PORT) errors.push({ path: at('destination_port'), reason: `value must be less than or equal to ${MAX_PORT}` });
      return ({ info }) => info.downstreamLocal.port === port;
    }
    case 'destination_port_range': {
      const r = p.destination_port_range;
      const start = r?.start ?? 0;
      const end = r?.end ?? 0;
      // Envoy's PortRangeMatcher: [start, end), both within [0, 65536], start < end.
      if (start < 0 || start > 65536) errors.push({ path: at('destination_port_range.start'), reason: `range start ${start} is out of bounds` });
      else if (end < 0 || end > 65536) errors.push({ path: at('destination_port_range.end'), reason: `range end ${end} is out of bounds` });
      else if (start >= end) errors.push({ path: at('destination_port_range'), reason: `range start ${start} cannot be greater or equal than range end ${end}` });
      return ({ info }) => info.downstreamLocal.port >= start && info.downstreamLocal.port < end;
    }
    case 'requested_server_name': {
      const test = compileString(p.requested_server_name ?? null, at('requested_server_name'), errors);
      if (!test) return NEVER;
      // Envoy matches the connection's requested server name, '' when the client sent no SNI.
      return ({ info }) => test(info.requestedServerName ?? info.downstreamTls?.sni ?? '');
    }
    case 'metadata': {
      if (!p.metadata) return unsupported(at('metadata'), 'an empty metadata matcher', errors);
      const m = compileMetadataMatcher(p.metadata, at('metadata'), errors);
      return ({ info }) => m(info);
    }
    case 'matcher':
      return unsupported(at('matcher'), 'permission matcher extensions (matcher)', errors);
    case 'uri_template':
      return unsupported(at('uri_template'), 'URI template permissions (uri_template)', errors);
    default:
      errors.push({ path: at('rule'), reason: 'value is required (one of and_rules, or_rules, any, header, url_path, destination_ip, destination_port, destination_port_range, not_rule, requested_server_name)' });
      return NEVER;
  }
}

/**
 * Envoy's AuthenticatedMatcher reads the connection's TLS session: a plaintext connection never
 * matches. With a principal_name, each URI SAN, then each DNS SAN, then the subject is tried
 * (Envoy's order). Without one, the peer must have presented a certificate that was validated
 * (stricter than Envoy, which accepts any TLS connection there, client certificate or not).
 */
function compileAuthenticated(p: Principal__Output, path: string, errors: ConfigError[]): RbacMatcher {
  const name = p.authenticated?.principal_name ?? null;
  if (!name) {
    return ({ info }) => {
      const tls = info.downstreamTls;
      return tls !== undefined && tls.peerCertificatePresented && tls.peerCertificateValidated;
    };
  }
  const test = compileString(name, joinPath(path, 'principal_name'), errors);
  if (!test) return NEVER;
  return ({ info }) => {
    const tls = info.downstreamTls;
    if (!tls || !tls.peerCertificatePresented) return false;
    for (const uri of tls.peerUriSans) if (test(uri)) return true;
    for (const dns of tls.peerDnsSans) if (test(dns)) return true;
    return test(tls.peerSubject);
  };
}

/** One Principal (the `identifier` oneof) -> predicate; problems are pushed to `errors`. */
export function compilePrincipal(p: Principal__Output, path: string, errors: ConfigError[]): RbacMatcher {
  const at = (f: string): string => joinPath(path, f);
  switch (p.identifier) {
    case 'and_ids':
    case 'or_ids': {
      const ids = p[p.identifier]?.ids ?? [];
      const list = ids.map((id, i) => compilePrincipal(id, at(`${p.identifier}.ids[${i}]`), errors));
      if (list.length === 0) return p.identifier === 'and_ids' ? ALWAYS : NEVER;
      return p.identifier === 'and_ids' ? allOf(list) : anyOf(list);
    }
    case 'not_id': {
      if (!p.not_id) return unsupported(at('not_id'), 'an empty not_id', errors);
      const inner = compilePrincipal(p.not_id, at('not_id'), errors);
      return (input) => !inner(input);
    }
    case 'any':
      return ALWAYS;
    case 'authenticated':
      return compileAuthenticated(p, at('authenticated'), errors);
    case 'source_ip':
    // Deprecated: the connection's peer, which is the direct remote address.
    // falls through
    case 'direct_remote_ip':
      return compileCidr(p[p.identifier], at(p.identifier), errors, (info) => info.downstreamDirectRemote);
    case 'remote_ip':
      // The client address after x-forwarded-for / xff_num_trusted_hops processing.
      return compileCidr(p.remote_ip, at('remote_ip'), errors, (info) => info.downstreamRemote);
    case 'header':
      return compileHeader(p.header, at('header'), errors);
    case 'url_path':
      return compileUrlPath(p.url_path, at('url_path'), errors);
    case 'metadata': {
      if (!p.metadata) return unsupported(at('metadata'), 'an empty metadata matcher', errors);
      const m = compileMetadataMatcher(p.metadata, at('metadata'), errors);
      return ({ info }) => m(info);
    }
    case 'filter_state':
      return unsupported(at('filter_state'), 'matching filter state (filter_state principal)', errors);
    default:
      errors.push({ path: at('identifier'), reason: 'value is required (one of and_ids, or_ids, any, authenticated, source_ip, direct_remote_ip, remote_ip, header, url_path, not_id)' });
      return NEVER;
  }
}
