// The header-to-metadata filter (Envoy's HeaderToMetadataFilter): request rules read a header (its
// first value) or a cookie when the request arrives, response rules a header of the response; a
// value present (non-empty, at most 8 KiB) goes into dynamic metadata as on_header_present says
// (the value itself, rewritten or base64-decoded, or a fixed one; a string or a number), an absent
// one as on_header_missing says; `remove` takes the header out. A route's Config replaces the filter's.

import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { setDynamicMetadata } from '../../../proxy/http/dynamic-metadata.ts';
import { cookieValue } from '../../../proxy/http/route-hash.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { HEADER_TO_METADATA_NAME, parseHeaderToMetadata, type HeaderRule, type HeaderToMetadataConfig, type MetadataTarget } from './config.ts';

/** Envoy's MAX_HEADER_VALUE_LEN: longer values are not stored. */
const MAX_VALUE_BYTES = 8 * 1024;

function store(info: StreamInfo, t: MetadataTarget, raw: string): void {
  let v = t.value ?? (t.rewrite ? t.rewrite.replaceAll(raw) : raw);
  if (t.base64) v = Buffer.from(v, 'base64').toString('utf8');
  if (v === '' || v.length > MAX_VALUE_BYTES) return;
  if (t.number) {
    const n = Number(v);
    if (Number.isFinite(n)) setDynamicMetadata(info, t.namespace, { [t.key]: n });
    return;
  }
  setDynamicMetadata(info, t.namespace, { [t.key]: v });
}

function apply(rules: readonly HeaderRule[], headers: HeaderMap, info: StreamInfo): void {
  for (const r of rules) {
    const v = r.header !== undefined ? headers.get(r.header) : cookieValue(headers, r.cookie!);
    if (v !== undefined && v !== '') {
      if (r.onPresent) store(info, r.onPresent, v);
      if (r.remove && r.header !== undefined) headers.remove(r.header);
    } else if (r.onMissing?.value !== undefined) store(info, r.onMissing, r.onMissing.value);
  }
}

export class HeaderToMetadataFactory implements HttpFilterFactory<HeaderToMetadataConfig> {
  readonly config: HeaderToMetadataConfig;
  readonly #perRoute = new PerRouteConfigs<HeaderToMetadataConfig>(HEADER_TO_METADATA_NAME, 'header_to_metadata Config', (m, path) => parseHeaderToMetadata(m, { path }));

  constructor(config: HeaderToMetadataConfig) {
    this.config = config;
  }

  create(_config: HeaderToMetadataConfig, callbacks: HttpFilterCallbacks): HttpFilter {
    let config: HeaderToMetadataConfig | undefined;
    const effective = (): HeaderToMetadataConfig => {
      if (config) return config;
      const route = callbacks.route();
      const m = route?.perFilterConfig.get(HEADER_TO_METADATA_NAME);
      return (config = (route && typeof m === 'object' && m !== null ? this.#perRoute.get(m, route) : null) ?? this.config);
    };
    return {
      onRequestHeaders(headers: HeaderMap): FilterHeadersStatus {
        apply(effective().requestRules, headers, callbacks.streamInfo);
        return FilterHeadersStatus.Continue;
      },
      onResponseHeaders(headers: HeaderMap): FilterHeadersStatus {
        apply(effective().responseRules, headers, callbacks.streamInfo);
        return FilterHeadersStatus.Continue;
      },
    };
  }
}
