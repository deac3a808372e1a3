// http_inspector config: the HttpInspector message has no fields; parsing only freezes the stat prefix.

import { type Result, deepFreeze, ok } from '../../../config/result.ts';
import type { ParseContext } from '../../registry.ts';

export interface HttpInspectorConfig {
  /** Envoy's root-level prefix: `http_inspector.http11_found`... */
  readonly statPrefix: string;
}

export function parseHttpInspector(_message: unknown, _ctx: ParseContext): Result<HttpInspectorConfig> {
  return ok(deepFreeze({ statPrefix: 'http_inspector.' }));
}
