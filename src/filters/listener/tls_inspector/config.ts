// tls_inspector config: parsed from TlsInspector into a frozen object. JA3 fingerprinting is not
// implemented (a warning); initial_read_buffer_size is validated as Envoy does and otherwise unused.

import type { TlsInspector__Output } from '../../../generated/envoy/extensions/filters/listener/tls_inspector/v3/TlsInspector.ts';
import { type Result, deepFreeze, fail, joinPath } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export interface TlsInspectorConfig {
  /** Stat prefix Envoy uses: counters live at the root, `tls_inspector.tls_found`... */
  readonly statPrefix: string;
}

export function parseTlsInspector(message: unknown, ctx: ParseContext): Result<TlsInspectorConfig> {
  const m = (message ?? {}) as Partial<TlsInspector__Output>;
  const size = m.initial_read_buffer_size?.value;
  if (size !== undefined && (size <= 255 || size >= 65537)) {
    return fail(joinPath(ctx.path, 'initial_read_buffer_size'), 'value must be inside range (255, 65537)');
  }
  const warnings = m.enable_ja3_fingerprinting?.value ? ['tls_inspector: enable_ja3_fingerprinting is not supported by legate and is ignored'] : undefined;
  const value = deepFreeze({ statPrefix: 'tls_inspector.' });
  return warnings ? { ok: true, value, warnings } : { ok: true, value };
}
