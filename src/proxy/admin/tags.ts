// Envoy's default stat tag extraction (source/common/config/well_known_names.cc): turns
// `cluster.foo.upstream_rq_200` into `cluster.upstream_rq` + tags. Never throws; an unmatched name has no tags.

/** One extracted tag: Envoy's tag name (`envoy.cluster_name`) and its value. */
export interface Tag {
  readonly name: string;
  readonly value: string;
}

export interface TaggedName {
  /** The stat name with every tag's text removed (`cluster.upstream_rq`). */
  readonly name: string;
  readonly tags: readonly Tag[];
}

// Substitutions Envoy expands inside its default regexes.
const ADDRESS = String.raw`(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)`;
const CIPHER = String.raw`[\w-]+`;
const TLS_VERSION = String.raw`TLSv\d\.\d`;
const TAG_VALUE = String.raw`[^\.]+`;
const ROUTE_CONFIG_NAME = String.raw`[\w.\/-]+`;
const SCOPED_ROUTE_CONFIG_NAME = String.raw`[\w.-]+`;
const LISTENER_OR_CLUSTER_WITH_NAME = String.raw`(?:listener|cluster)\..*?`;

function expand(re: string): string {
  return re
    .replaceAll('<ADDRESS>', ADDRESS)
    .replaceAll('<CIPHER>', CIPHER)
    .replaceAll('<TLS_VERSION>', TLS_VERSION)
    .replaceAll('<TAG_VALUE>', TAG_VALUE)
    .replaceAll('<ROUTE_CONFIG_NAME>', ROUTE_CONFIG_NAME)
    .replaceAll('<SCOPED_ROUTE_CONFIG_NAME>', SCOPED_ROUTE_CONFIG_NAME)
    .replaceAll('<LISTENER_OR_CLUSTER_WITH_NAME>', LISTENER_OR_CLUSTER_WITH_NAME)
    .replaceAll('<PROXY_PROTOCOL_VERSION>', String.raw`\d`);
}

interface Extractor {
  readonly tag: string;
  /** First dot-separated token every matching name starts with, or '' (tried on every name). */
  readonly prefix: string;
  /** Appends a tag and the [start, end) range to remove; returns false when it does not match. */
  extract(name: string, tokens: readonly string[], tags: Tag[], remove: Array<[number, number]>): boolean;
}

/** Envoy's prefix rule for regexes: `^word\.` (or `^word(?=\.)`, `^word$`) -> 'word'. */
function regexPrefix(re: string): string {
  const m = /^\^([A-Za-z0-9_]+)(\\\.|\(\?=\\\.\)|\$$)/.exec(re);
  return m ? m[1]! : '';
}

function regexExtractor(tag: string, pattern: string, substr = '', negative = ''): Extractor {
  const source = expand(pattern);
  const re = new RegExp(source, 'd');
  return {
    tag,
    prefix: regexPrefix(source),
    extract(name, _tokens, tags, remove) {
      if (substr && !name.includes(substr)) return false;
      const m = re.exec(name);
      const removeText = m?.[1];
      if (!m || !removeText || !m.indices?.[1]) return false;
      const value = m[2] || removeText;
      if (negative && value === negative) return false;
      tags.push({ name: tag, value });
      remove.push(m.indices[1]);
      return true;
    },
  };
}

/**
 * Envoy's tokenized form: `*` one token, `**` one or more, `$` the tag value (one token).
 * The value's token is removed with the dot after it (or before it, when it is the last token).
 */
function tokenExtractor(tag: string, pattern: string): Extractor {
  const pat = pattern.split('.');
  const matchIndex = pat.indexOf('$');
  const first = pat[0]!;
  const prefix = first === '$' || first === '*' || first === '**' ? '' : first;

  // Returns the input index the `$` landed on, or -1.
  function search(input: readonly string[], ii: number, pi: number, found: number): number {
    for (; ii < input.length && pi < pat.length; ii++, pi++) {
      const expected = pat[pi]!;
      if (pi === matchIndex) {
        found = ii;
        continue;
      }
      if (expected === '**') {
        if (pi === pat.length - 1) return found;
        for (let k = ii; k < input.length; k++) {
          const r = search(input, k, pi + 1, found);
          if (r >= 0) return r;
        }
        return -1;
      }
      if (expected !== '*' && expected !== input[ii]) return -1;
    }
    return pi === pat.length && ii === input.length ? found : -1;
  }

  return {
    tag,
    prefix,
    extract(_name, tokens, tags, remove) {
      const at = search(tokens, 0, 0, -1);
      if (at < 0) return false;
      let start = 0;
      for (let i = 0; i < at; i++) start += tokens[i]!.length + 1;
      const value = tokens[at]!;
      let end = start + value.length;
      if (at < tokens.length - 1) end++;
      else if (start > 0) start--;
      tags.push({ name: tag, value });
      remove.push([start, end]);
      return true;
    },
  };
}

// Envoy adds every regex descriptor first, then every tokenized one; order matters for label order.
const REGEXES: Extractor[] = [
  regexExtractor('envoy.response_code', String.raw`_rq(_(\d{3}))$`, '_rq_'),
  regexExtractor('envoy.response_code_class', String.raw`_rq_((\d))xx$`, '_rq_'),
  regexExtractor('envoy.dynamo_partition_id', String.raw`^http\.<TAG_VALUE>\.dynamodb\.table\.<TAG_VALUE>\.capacity\.<TAG_VALUE>(\.__partition_id=(\w{7}))$`, '.dynamodb.table.'),
  regexExtractor('envoy.dynamo_operation', String.raw`^http\.<TAG_VALUE>\.dynamodb.(?:operation|table\.<TAG_VALUE>\.capacity)(\.(<TAG_VALUE>))(?:\.|$)`, '.dynamodb.'),
  regexExtractor('envoy.dynamo_table', String.raw`^http\.<TAG_VALUE>\.dynamodb.(?:table|error)\.((<TAG_VALUE>)\.)`, '.dynamodb.'),
  regexExtractor('envoy.ssl_cipher', String.raw`^listener\..*?\.ssl\.ciphers(\.(<CIPHER>))$`, '.ssl.ciphers.'),
  regexExtractor('envoy.ssl_curve', String.raw`^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.curves(\.(<CIPHER>))$`, '.ssl.curves.'),
  regexExtractor('envoy.ssl_sigalg', String.raw`^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.sigalgs(\.(<CIPHER>))$`, '.ssl.sigalgs.'),
  regexExtractor('envoy.ssl_version', String.raw`^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.versions(\.(<TLS_VERSION>))$`, '.ssl.versions.'),
  regexExtractor('cipher_suite', String.raw`^cluster\.<TAG_VALUE>\.ssl\.ciphers(\.(<CIPHER>))$`, '.ssl.ciphers.'),
  regexExtractor('envoy.http_conn_manager_prefix', String.raw`^listener\..*?\.http\.((<TAG_VALUE>)\.)`, '.http.'),
  regexExtractor('envoy.worker_id', String.raw`^(?:listener\.(?:<ADDRESS>|<TAG_VALUE>)|server|listener_manager|thread_local_cluster_manager)\.worker_((\d+)\.)`),
  regexExtractor('envoy.listener_address', String.raw`^listener\.((<ADDRESS>|<TAG_VALUE>)\.)`, '', 'admin'),
  regexExtractor('envoy.rds_route_config', String.raw`^http\.<TAG_VALUE>\.rds\.((<ROUTE_CONFIG_NAME>)\.)\w+?$`, '.rds.'),
  regexExtractor('envoy.scoped_rds_config', String.raw`^http\.<TAG_VALUE>\.scoped_rds\.((<SCOPED_ROUTE_CONFIG_NAME>)\.)\w+?$`, '.scoped_rds.'),
  regexExtractor('envoy.rbac_policy_name', String.raw`^http\.<TAG_VALUE>\.rbac\.(?:<TAG_VALUE>\.)?policy\.((<TAG_VALUE>)\.)(allowed|shadow_allowed|denied|shadow_denied)$`),
  regexExtractor('envoy.rbac_http_prefix', String.raw`^http\.<TAG_VALUE>\.rbac\.((<TAG_VALUE>)\.).*?`, '', 'policy'),
  regexExtractor('envoy.proxy_protocol_prefix', String.raw`^proxy_proto\.((<TAG_VALUE>)\.).+$`, '', 'versions'),
  regexExtractor('envoy.proxy_protocol_version', String.raw`^proxy_proto\.((?:<TAG_VALUE>\.)?versions\.v(<PROXY_PROTOCOL_VERSION>)\.)\w+$`),
  regexExtractor('envoy.tls_certificate', String.raw`^<LISTENER_OR_CLUSTER_WITH_NAME>\.ssl\.certificate\.((<TAG_VALUE>)\.).*$`, '.ssl.certificate'),
  regexExtractor('envoy.xds_resource_name', String.raw`^sds\.((<TAG_VALUE>)\.).+`),
];

const TOKENIZED: Extractor[] = [
  tokenExtractor('envoy.mongo_callsite', 'mongo.*.collection.*.callsite.$.query.**'),
  tokenExtractor('envoy.mongo_collection', 'mongo.*.collection.$.**.query.*'),
  tokenExtractor('envoy.mongo_cmd', 'mongo.*.cmd.$.**'),
  tokenExtractor('envoy.grpc_bridge_method', 'cluster.*.grpc.*.$.**'),
  tokenExtractor('envoy.http_user_agent', 'http.*.user_agent.$.**'),
  tokenExtractor('envoy.virtual_cluster', 'vhost.*.vcluster.$.**'),
  tokenExtractor('envoy.fault_downstream_cluster', 'http.*.fault.$.**'),
  tokenExtractor('envoy.grpc_bridge_service', 'cluster.*.grpc.$.**'),
  tokenExtractor('envoy.tcp_prefix', 'tcp.$.**'),
  tokenExtractor('envoy.udp_prefix', 'udp.$.**'),
  tokenExtractor('envoy.clientssl_prefix', 'auth.clientssl.$.**'),
  tokenExtractor('envoy.ratelimit_prefix', 'ratelimit.$.**'),
  tokenExtractor('envoy.cluster_name', 'cluster.$.**'),
  tokenExtractor('envoy.ext_authz_prefix', 'cluster.*.ext_authz.$.**'),
  tokenExtractor('envoy.ext_authz_prefix', 'http.*.ext_authz.$.**'),
  tokenExtractor('envoy.http_conn_manager_prefix', 'http.$.**'),
  tokenExtractor('envoy.virtual_host', 'vhost.$.**'),
  tokenExtractor('envoy.mongo_prefix', 'mongo.$.**'),
  tokenExtractor('envoy.route', 'vhost.*.route.$.**'),
  tokenExtractor('envoy.thrift_prefix', 'thrift.$.**'),
  tokenExtractor('envoy.redis_prefix', 'redis.$.**'),
  tokenExtractor('envoy.local_http_ratelimit_prefix', '$.http_local_rate_limit.**'),
  tokenExtractor('envoy.local_network_ratelimit_prefix', 'local_rate_limit.$.**'),
  tokenExtractor('envoy.local_listener_ratelimit_prefix', 'listener_local_ratelimit.$.**'),
  tokenExtractor('envoy.dns_filter_prefix', 'dns_filter.$.**'),
  tokenExtractor('envoy.connection_limit_prefix', 'connection_limit.$.**'),
  tokenExtractor('envoy.rbac_prefix', '$.rbac.**'),
  tokenExtractor('envoy.google_grpc_client_prefix', 'grpc.$.**'),
];

// Envoy runs the extractors without a prefix first, then those keyed by the name's first token.
const WITHOUT_PREFIX: Extractor[] = [];
const BY_PREFIX = new Map<string, Extractor[]>();
for (const e of [...REGEXES, ...TOKENIZED]) {
  if (!e.prefix) WITHOUT_PREFIX.push(e);
  else {
    let list = BY_PREFIX.get(e.prefix);
    if (!list) BY_PREFIX.set(e.prefix, (list = []));
    list.push(e);
  }
}

function removeRanges(name: string, ranges: ReadonlyArray<readonly [number, number]>): string {
  if (ranges.length === 0) return name;
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  let out = '';
  let pos = 0;
  for (const [s, e] of sorted) {
    if (s > pos) out += name.slice(pos, s);
    pos = Math.max(pos, e);
  }
  return out + name.slice(pos);
}

/** Applies Envoy's default tag extractors, in Envoy's order. */
export function extractTags(name: string): TaggedName {
  const tokens = name.split('.');
  const tags: Tag[] = [];
  const remove: Array<[number, number]> = [];
  for (const e of WITHOUT_PREFIX) e.extract(name, tokens, tags, remove);
  const dot = name.indexOf('.');
  if (dot > 0) for (const e of BY_PREFIX.get(name.slice(0, dot)) ?? []) e.extract(name, tokens, tags, remove);
  return { name: removeRanges(name, remove), tags };
}

// Stat names are few and stable, so scrapes reuse earlier extractions.
const MAX_CACHED = 100_000;
const cache = new Map<string, TaggedName>();

/** extractTags with a bounded cache (cleared when full). */
export function cachedTags(name: string): TaggedName {
  let t = cache.get(name);
  if (!t) {
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(name, (t = extractTags(name)));
  }
  return t;
}

/** Envoy's Prometheus sanitisation: every character outside [a-zA-Z0-9_] becomes `_`. */
export function sanitizeName(s: string): string {
  return s.replace(/[^a-zA-Z0-9_]/g, '_');
}
