// Parses envoy.extensions.filters.http.basic_auth.v3.BasicAuth and BasicAuthPerRoute: `users` in
// htpasswd form with SHA-1 hashes (`name:{SHA}base64`), Envoy's only accepted format, with Envoy's
// errors for anything else; forward_username_header.

import { fail, joinPath, ok, type Result } from '../../../config/result.ts';
import { readDataSource } from '../../../config/data-source.ts';
import type { DataSource__Output } from '../../../generated/envoy/config/core/v3/DataSource.ts';

export const BASIC_AUTH_NAME = 'envoy.filters.http.basic_auth';
export const BASIC_AUTH_TYPE = 'envoy.extensions.filters.http.basic_auth.v3.BasicAuth';

interface BasicAuth__Output {
  readonly users: DataSource__Output | null;
  readonly forward_username_header?: string;
}

/** User name -> base64 of the password's SHA-1 digest. */
export type Users = ReadonlyMap<string, string>;

export interface BasicAuthConfig {
  readonly users: Users;
  /** Lower case; '' = none. */
  readonly forwardUsernameHeader: string;
}

function parseUsers(ds: DataSource__Output | null, path: string): Result<Users> {
  if (!ds) return fail(path, 'value is required');
  const text = readDataSource(ds, path);
  if (!text.ok) return text;
  const users = new Map<string, string>();
  for (const raw of text.value.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon);
    const hash = colon < 0 ? '' : line.slice(colon + 1);
    if (!name || !hash) return fail(path, 'basic auth: invalid htpasswd format, username or password is empty');
    if (!hash.startsWith('{SHA}')) return fail(path, 'basic auth: unsupported htpasswd format: please use {SHA}');
    if (users.has(name)) return fail(path, 'basic auth: duplicate users');
    users.set(name, hash.slice(5));
  }
  return ok(users);
}

export function parseBasicAuth(message: unknown, ctx: { readonly path: string }): Result<BasicAuthConfig> {
  const m = message as BasicAuth__Output;
  const users = parseUsers(m.users, joinPath(ctx.path, 'users'));
  if (!users.ok) return users;
  return ok(Object.freeze({ users: users.value, forwardUsernameHeader: (m.forward_username_header ?? '').toLowerCase() }));
}

export function parseBasicAuthPerRoute(message: object, path: string): Result<Users> {
  return parseUsers((message as BasicAuth__Output).users, joinPath(path, 'users'));
}
