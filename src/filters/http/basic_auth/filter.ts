// The basic authentication filter (Envoy's BasicAuthFilter): `Authorization: Basic` credentials
// checked against the users' SHA-1 password hashes (a route's BasicAuthPerRoute users instead of
// the filter's); the user name forwarded in forward_username_header. Failures are 401 with Envoy's
// reasons and `www-authenticate: Basic realm="<url>"`; http.<prefix>.basic_auth.allowed / denied.

import { createHash, timingSafeEqual } from 'node:crypto';
import { FilterHeadersStatus, type HttpFilter, type HttpFilterCallbacks, type HttpFilterFactory } from '../filter.ts';
import type { HeaderMap } from '../../../proxy/http/headers.ts';
import type { RuntimeContext } from '../../registry.ts';
import { originalUri } from '../../../proxy/http/original-uri.ts';
import { PerRouteConfigs } from '../per-route-config.ts';
import { BASIC_AUTH_NAME, parseBasicAuthPerRoute, type BasicAuthConfig, type Users } from './config.ts';

/** Envoy's MaximumUriLength for the realm. */
const MAX_URI = 256;

function sameHash(password: string, expected: string): boolean {
  const got = Buffer.from(createHash('sha1').update(password).digest('base64'));
  const want = Buffer.from(expected);
  return got.length === want.length && timingSafeEqual(got, want);
}

export class BasicAuthFactory implements HttpFilterFactory<BasicAuthConfig> {
  readonly config: BasicAuthConfig;
  readonly #rt: RuntimeContext;
  readonly #perRoute = new PerRouteConfigs<Users>(BASIC_AUTH_NAME, 'BasicAuthPerRoute', parseBasicAuthPerRoute);

  constructor(config: BasicAuthConfig, rt: RuntimeContext) {
    this.config = config;
    this.#rt = rt;
  }

  count(statPrefix: string, outcome: 'allowed' | 'denied'): void {
    this.#rt.stats.counter(`http.${statPrefix}.basic_auth.${outcome}`).inc();
  }

  users(cb: HttpFilterCallbacks): Users {
    const route = cb.route();
    const m = route?.perFilterConfig.get(BASIC_AUTH_NAME);
    return (route && typeof m === 'object' && m !== null ? this.#perRoute.get(m, route) : null) ?? this.config.users;
  }

  create(_config: BasicAuthConfig, cb: HttpFilterCallbacks): HttpFilter {
    const deny = (headers: HeaderMap, body: string, details: string): FilterHeadersStatus => {
      this.count(cb.statPrefix, 'denied');
      cb.sendLocalReply(401, body, { details, headers: { 'www-authenticate': `Basic realm="${originalUri(headers, MAX_URI)}"` } });
      return FilterHeadersStatus.StopIteration;
    };
    return {
      onRequestHeaders: (headers: HeaderMap): FilterHeadersStatus => {
        const auth = headers.get('authorization');
        if (auth === undefined) return deny(headers, 'User authentication failed. Missing username and password.', 'no_credential_for_basic_auth');
        if (!auth.startsWith('Basic ')) return deny(headers, "User authentication failed. Expected 'Basic' authentication scheme.", 'invalid_scheme_for_basic_auth');
        const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return deny(headers, 'User authentication failed. Invalid basic credential format.', 'invalid_format_for_basic_auth');
        const user = decoded.slice(0, colon);
        const hash = this.users(cb).get(user);
        if (hash === undefined || !sameHash(decoded.slice(colon + 1), hash)) return deny(headers, 'User authentication failed. Invalid username/password combination.', 'invalid_credential_for_basic_auth');
        if (this.config.forwardUsernameHeader) headers.set(this.config.forwardUsernameHeader, user);
        this.count(cb.statPrefix, 'allowed');
        return FilterHeadersStatus.Continue;
      },
    };
  }
}
