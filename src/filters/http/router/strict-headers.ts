// The router's strict_check_headers (Envoy's StrictHeaderChecker): a named x-envoy-* request header
// that is present must hold a valid value (a number of milliseconds or retries, known retry_on
// tokens), or the request is answered 400 with flag IH instead of being forwarded.

import type { HeaderMap } from '../../../proxy/http/headers.ts';
import { retryOnTokensValid } from '../../../proxy/http/route-retry-policy.ts';
import type { StrictHeader } from './config.ts';

function valid(name: StrictHeader, value: string): boolean {
  switch (name) {
    case 'x-envoy-upstream-rq-timeout-ms':
    case 'x-envoy-upstream-rq-per-try-timeout-ms':
      return /^\d+$/.test(value) && Number(value) <= Number.MAX_SAFE_INTEGER;
    case 'x-envoy-max-retries':
      return /^\d+$/.test(value) && Number(value) <= 0xffffffff;
    case 'x-envoy-retry-on':
      return retryOnTokensValid(value, 'http');
    case 'x-envoy-retry-grpc-on':
      return retryOnTokensValid(value, 'grpc');
  }
}

/** The first checked header with an invalid value, if any. */
export function strictHeaderViolation(headers: HeaderMap, names: readonly StrictHeader[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = headers.get(name);
    if (value !== undefined && !valid(name, value)) return { name, value };
  }
  return undefined;
}
