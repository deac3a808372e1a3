// Parses envoy.extensions.filters.http.ext_authz.v3.ExtAuthz (the gRPC authorization service,
// envoy.service.auth.v3.Authorization/Check over an envoy_grpc cluster, or the HTTP service,
// http-service.ts) and ExtAuthzPerRoute. What legate does not implement is a config error naming the
// field (google_grpc, metadata namespaces, the top-level header allow/deny lists), never silently
// ignored.

import { joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { httpStatusCode } from '../../../config/http-status.ts';
import type { ParseContext } from '../../registry.ts';
import type { RuntimeFractionalPercent__Output } from '../../../generated/envoy/config/core/v3/RuntimeFractionalPercent.ts';
import { parseRuntimeFraction, type RuntimeFraction } from '../../../config/runtime-fraction.ts';
import { checkTransportApi, parseGrpcService, type GrpcService__Output } from '../../common/grpc-service-config.ts';
import { parseHttpService, type HttpService__Output, type HttpServiceConfig } from './http-service.ts';

export const EXT_AUTHZ_NAME = 'envoy.filters.http.ext_authz';
export const EXT_AUTHZ_TYPE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz';
export const EXT_AUTHZ_PER_ROUTE_TYPE = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute';

// The decoded messages (proto-loader object form; src/generated has no types for these protos).
interface BufferSettings__Output {
  readonly max_request_bytes: number;
  readonly allow_partial_message: boolean;
  readonly pack_as_bytes: boolean;
}
export interface ExtAuthz__Output {
  readonly grpc_service?: GrpcService__Output | null;
  readonly http_service?: unknown;
  readonly services?: 'grpc_service' | 'http_service';
  readonly transport_api_version: string | number;
  readonly failure_mode_allow: boolean;
  readonly failure_mode_allow_header_add: boolean;
  readonly with_request_body: BufferSettings__Output | null;
  readonly clear_route_cache: boolean;
  readonly status_on_error: { readonly code: string | number } | null;
  readonly filter_enabled: RuntimeFractionalPercent__Output | null;
  readonly deny_at_disable: { readonly default_value: { readonly value: boolean } | null; readonly runtime_key: string } | null;
  readonly include_peer_certificate: boolean;
  readonly include_tls_session: boolean;
  readonly stat_prefix: string;
  readonly metadata_context_namespaces: readonly string[];
  readonly typed_metadata_context_namespaces: readonly string[];
  readonly allowed_headers: unknown;
  readonly disallowed_headers: unknown;
  readonly filter_enabled_metadata: unknown;
  readonly decoder_header_mutation_rules: unknown;
}
export interface ExtAuthzPerRoute__Output {
  readonly disabled?: boolean;
  readonly check_settings?: { readonly context_extensions: Readonly<Record<string, string>>; readonly disable_request_body_buffering: boolean; readonly with_request_body: BufferSettings__Output | null } | null;
  readonly override?: 'disabled' | 'check_settings';
}

export interface BodySettings {
  readonly maxBytes: number;
  readonly allowPartial: boolean;
  readonly packAsBytes: boolean;
}

export interface ExtAuthzConfig {
  /** The gRPC service's cluster (empty with `http`). */
  readonly cluster: string;
  /** The HTTP authorization service, instead of gRPC. */
  readonly http: HttpServiceConfig | undefined;
  /** :authority of the Check call; empty: the cluster name. */
  readonly authority: string;
  readonly timeoutMs: number;
  readonly initialMetadata: ReadonlyArray<readonly [string, string]>;
  readonly failureModeAllow: boolean;
  readonly failureModeAllowHeaderAdd: boolean;
  readonly withRequestBody: BodySettings | undefined;
  readonly clearRouteCache: boolean;
  /** status_on_error (default 403). */
  readonly statusOnError: number;
  readonly filterEnabled: RuntimeFraction | undefined;
  /** deny_at_disable (a RuntimeFeatureFlag: its runtime_key is required). */
  readonly denyAtDisable: { readonly runtimeKey: string; readonly dflt: boolean } | undefined;
  readonly includePeerCertificate: boolean;
  readonly includeTlsSession: boolean;
  /** `ext_authz.` or `ext_authz.<stat_prefix>.` under the route's cluster. */
  readonly statInfix: string;
}

export interface ExtAuthzPerRouteConfig {
  readonly disabled: boolean;
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly disableRequestBodyBuffering: boolean;
  readonly withRequestBody: BodySettings | undefined;
}

function statusCode(code: string | number | undefined, fallback: number): number {
  return httpStatusCode(code) ?? fallback;
}

function bodySettings(b: BufferSettings__Output | null | undefined, path: string, errors: ConfigError[]): BodySettings | undefined {
  if (!b) return undefined;
  if (!(b.max_request_bytes > 0)) errors.push({ path: joinPath(path, 'max_request_bytes'), reason: 'value must be greater than 0' });
  return Object.freeze({ maxBytes: b.max_request_bytes, allowPartial: b.allow_partial_message, packAsBytes: b.pack_as_bytes });
}

const set = (v: unknown): boolean => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);

export function parseExtAuthz(message: unknown, ctx: ParseContext): Result<ExtAuthzConfig> {
  const m = message as ExtAuthz__Output;
  const p = ctx.path;
  const errors: ConfigError[] = [];
  const http = m.http_service ? parseHttpService(m.http_service as HttpService__Output, joinPath(p, 'http_service'), errors) : undefined;
  const httpCluster = http?.cluster ?? '';
  if (httpCluster && ctx.clusterNames && !ctx.clusterNames.has(httpCluster)) errors.push({ path: joinPath(p, 'http_service.server_uri.cluster'), reason: `unknown cluster '${httpCluster}'` });
  const g = m.http_service ? undefined : m.grpc_service;
  if (!g && !m.http_service) errors.push({ path: joinPath(p, 'grpc_service'), reason: 'one of grpc_service or http_service is required' });
  const grpc = g ? parseGrpcService(g, joinPath(p, 'grpc_service'), ctx, errors) : undefined;
  checkTransportApi(m.transport_api_version, joinPath(p, 'transport_api_version'), errors);
  for (const f of ['metadata_context_namespaces', 'typed_metadata_context_namespaces', 'allowed_headers', 'disallowed_headers', 'filter_enabled_metadata', 'decoder_header_mutation_rules'] as const) {
    if (set(m[f])) errors.push({ path: joinPath(p, f), reason: `${f} is not supported yet` });
  }
  const withRequestBody = bodySettings(m.with_request_body, joinPath(p, 'with_request_body'), errors);
  const filterEnabled = parseRuntimeFraction(m.filter_enabled, joinPath(p, 'filter_enabled'), errors);
  const dad = m.deny_at_disable;
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      cluster: grpc?.cluster ?? '',
      http,
      authority: grpc?.authority ?? '',
      timeoutMs: http ? http.timeoutMs : (grpc?.timeoutMs ?? 0),
      initialMetadata: grpc?.initialMetadata ?? [],
      failureModeAllow: m.failure_mode_allow,
      failureModeAllowHeaderAdd: m.failure_mode_allow_header_add,
      withRequestBody,
      clearRouteCache: m.clear_route_cache,
      statusOnError: statusCode(m.status_on_error?.code, 403),
      filterEnabled,
      denyAtDisable: dad ? Object.freeze({ runtimeKey: dad.runtime_key, dflt: dad.default_value?.value ?? false }) : undefined,
      includePeerCertificate: m.include_peer_certificate,
      includeTlsSession: m.include_tls_session,
      statInfix: m.stat_prefix ? `ext_authz.${m.stat_prefix}.` : 'ext_authz.',
    }),
  );
}

export function parseExtAuthzPerRoute(message: unknown, path: string): Result<ExtAuthzPerRouteConfig> {
  const m = message as ExtAuthzPerRoute__Output;
  const errors: ConfigError[] = [];
  if (m.override !== 'disabled' && m.override !== 'check_settings' && !m.disabled && !m.check_settings) errors.push({ path, reason: 'one of disabled or check_settings is required' });
  const cs = m.check_settings;
  const withRequestBody = bodySettings(cs?.with_request_body, joinPath(path, 'check_settings.with_request_body'), errors);
  if (errors.length > 0) return { ok: false, errors };
  return ok(
    Object.freeze({
      disabled: m.disabled === true,
      contextExtensions: Object.freeze({ ...(cs?.context_extensions ?? {}) }),
      disableRequestBodyBuffering: cs?.disable_request_body_buffering ?? false,
      withRequestBody,
    }),
  );
}
