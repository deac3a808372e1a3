// proxy_protocol config: ProxyProtocol parsed into a frozen object. `rules` (TLVs into dynamic
// metadata) are refused: legate has no connection-level dynamic metadata yet.

import { type Result, deepFreeze, fail, joinPath } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export interface ProxyProtocolConfig {
  /** `proxy_proto.` or `proxy_proto.<stat_prefix>.`. */
  readonly statPrefix: string;
  /** allow_requests_without_proxy_protocol: a connection without a header goes on as it is. */
  readonly allowWithout: boolean;
  /** disallowed_versions: a header of one of these closes the connection. */
  readonly disallowed: ReadonlySet<1 | 2>;
}

interface ProxyProtocolMessage {
  rules?: unknown[];
  allow_requests_without_proxy_protocol?: boolean;
  pass_through_tlvs?: unknown;
  disallowed_versions?: Array<string | number>;
  stat_prefix?: string;
}

export function parseProxyProtocol(message: unknown, ctx: ParseContext): Result<ProxyProtocolConfig> {
  const m = (message ?? {}) as ProxyProtocolMessage;
  if (m.rules && m.rules.length > 0) return fail(joinPath(ctx.path, 'rules'), 'TLVs as dynamic metadata are not supported');
  const disallowed = new Set<1 | 2>((m.disallowed_versions ?? []).map((v) => (v === 'V2' || v === 1 ? 2 : 1)));
  const warnings = m.pass_through_tlvs ? [`${joinPath(ctx.path, 'pass_through_tlvs')}: legate sends no PROXY header upstream; ignored`] : undefined;
  const value = deepFreeze({
    statPrefix: m.stat_prefix ? `proxy_proto.${m.stat_prefix}.` : 'proxy_proto.',
    allowWithout: m.allow_requests_without_proxy_protocol ?? false,
    disallowed,
  });
  return warnings ? { ok: true, value, warnings } : { ok: true, value };
}
