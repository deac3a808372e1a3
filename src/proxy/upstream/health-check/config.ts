// parseHealthChecks: Cluster.health_checks -> a frozen HealthCheckConfig (Envoy supports one per
// cluster). Never throws; problems are ConfigErrors naming their field path.

import type { HealthCheck__Output } from '../../../generated/envoy/config/core/v3/HealthCheck.ts';
import type { ConfigError } from '../../../config/result.ts';
import { joinPath } from '../../../config/result.ts';
import { durationMs, int64, wrapped } from '../../../config/values.ts';
import { structToJson } from '../../../config/struct-json.ts';

export interface HttpCheckConfig {
  readonly kind: 'http';
  /** Host/:authority; empty -> the cluster name. */
  readonly host: string;
  readonly path: string;
  readonly method: string;
  readonly http2: boolean;
  /** [start, end) ranges; default [200, 201) (Envoy: 200 only). */
  readonly expectedStatuses: ReadonlyArray<readonly [number, number]>;
  /** Statuses that count towards unhealthy_threshold instead of failing at once. */
  readonly retriableStatuses: ReadonlyArray<readonly [number, number]>;
  readonly headersToAdd: ReadonlyArray<{ readonly key: string; readonly value: string; readonly append: boolean }>;
  readonly headersToRemove: readonly string[];
  /** receive payloads: the body must contain them in order. */
  readonly receive: readonly Buffer[];
  readonly responseBufferSize: number;
}

export interface TcpCheckConfig {
  readonly kind: 'tcp';
  readonly send: Buffer | undefined;
  readonly receive: readonly Buffer[];
}

export interface GrpcCheckConfig {
  readonly kind: 'grpc';
  readonly serviceName: string;
  /** :authority; empty -> the cluster name. */
  readonly authority: string;
  readonly initialMetadata: ReadonlyArray<{ readonly key: string; readonly value: string }>;
}

export type CheckerConfig = HttpCheckConfig | TcpCheckConfig | GrpcCheckConfig;

export interface HealthCheckConfig {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly intervalJitterMs: number;
  readonly intervalJitterPercent: number;
  readonly initialJitterMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  readonly noTrafficIntervalMs: number;
  /** 0 = use noTrafficIntervalMs. */
  readonly noTrafficHealthyIntervalMs: number;
  readonly unhealthyIntervalMs: number;
  readonly unhealthyEdgeIntervalMs: number;
  readonly healthyEdgeIntervalMs: number;
  readonly reuseConnection: boolean;
  readonly altPort: number | undefined;
  /**
   * tls_options.alpn_protocols: the ALPN the checks' TLS connections offer instead of the transport
   * socket's `alpn_protocols`; empty: the transport socket's (checks never get a pool's fallback).
   */
  readonly tlsAlpn: readonly string[];
  /**
   * transport_socket_match_criteria as plain JSON: the checks' transport socket is the first of the
   * cluster's transport_socket_matches these labels match (else the cluster's transport_socket);
   * undefined: each host's own transport socket.
   */
  readonly transportSocketMatchCriteria: Readonly<Record<string, unknown>> | undefined;
  readonly checker: CheckerConfig;
}

type Payload = { text?: string; binary?: Buffer; payload?: 'text' | 'binary' } | null;

function payload(p: Payload, path: string, errors: ConfigError[]): Buffer | undefined {
  if (!p) return undefined;
  if (p.payload === 'binary') return Buffer.from(p.binary ?? Buffer.alloc(0));
  const hex = p.text ?? '';
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) {
    errors.push({ path: joinPath(path, 'text'), reason: `invalid hex string '${hex}'` });
    return undefined;
  }
  return Buffer.from(hex, 'hex');
}

function ranges(rs: ReadonlyArray<{ start: string; end: string }>, path: string, errors: ConfigError[]): Array<[number, number]> {
  return rs.map((r, i) => {
    const start = int64(r.start);
    const end = int64(r.end);
    if (start < 100 || end > 600 || start >= end) errors.push({ path: joinPath(path, `[${i}]`), reason: `invalid HTTP status range [${start}, ${end})` });
    return [start, end];
  });
}

export function parseHealthChecks(hcs: readonly HealthCheck__Output[], path: string, errors: ConfigError[]): HealthCheckConfig | undefined {
  if (hcs.length === 0) return undefined;
  if (hcs.length > 1) errors.push({ path, reason: 'Multiple health checks not supported' });
  const hc = hcs[0]!;
  const p = joinPath(path, '[0]');
  if (!hc.timeout) errors.push({ path: joinPath(p, 'timeout'), reason: 'value is required' });
  if (!hc.interval) errors.push({ path: joinPath(p, 'interval'), reason: 'value is required' });
  const timeoutMs = durationMs(hc.timeout, 0);
  const intervalMs = durationMs(hc.interval, 0);
  if (hc.timeout && timeoutMs <= 0) errors.push({ path: joinPath(p, 'timeout'), reason: 'value must be greater than 0s' });
  if (hc.interval && intervalMs <= 0) errors.push({ path: joinPath(p, 'interval'), reason: 'value must be greater than 0s' });
  if (!hc.unhealthy_threshold) errors.push({ path: joinPath(p, 'unhealthy_threshold'), reason: 'value is required' });
  if (!hc.healthy_threshold) errors.push({ path: joinPath(p, 'healthy_threshold'), reason: 'value is required' });
  let checker: CheckerConfig | undefined;
  switch (hc.health_checker) {
    case 'http_health_check': {
      const h = hc.http_health_check!;
      const hp = joinPath(p, 'http_health_check');
      if (!h.path) errors.push({ path: joinPath(hp, 'path'), reason: 'value length must be at least 1 characters' });
      const codec = String(h.codec_client_type);
      if (codec === 'HTTP3') errors.push({ path: joinPath(hp, 'codec_client_type'), reason: 'HTTP/3 health checks are not supported' });
      const method = String(h.method);
      if (method === 'CONNECT') errors.push({ path: joinPath(hp, 'method'), reason: 'CONNECT is not a valid health check method' });
      if (h.send) errors.push({ path: joinPath(hp, 'send'), reason: 'HTTP health check request bodies are not supported' });
      if (h.service_name_matcher) errors.push({ path: joinPath(hp, 'service_name_matcher'), reason: 'service_name_matcher is not supported' });
      const expected = ranges(h.expected_statuses, joinPath(hp, 'expected_statuses'), errors);
      checker = {
        kind: 'http',
        host: h.host,
        path: h.path,
        method: method === 'METHOD_UNSPECIFIED' ? 'GET' : method,
        http2: codec === 'HTTP2',
        expectedStatuses: expected.length > 0 ? expected : [[200, 201]],
        retriableStatuses: ranges(h.retriable_statuses, joinPath(hp, 'retriable_statuses'), errors),
        headersToAdd: h.request_headers_to_add.flatMap((o) => (o.header ? [{ key: o.header.key.toLowerCase(), value: o.header.value || o.header.raw_value.toString(), append: wrapped(o.append, true) }] : [])),
        headersToRemove: h.request_headers_to_remove.map((k) => k.toLowerCase()),
        receive: h.receive.flatMap((r, i) => payload(r, joinPath(hp, `receive[${i}]`), errors) ?? []),
        responseBufferSize: int64(wrapped(h.response_buffer_size), 1024),
      };
      break;
    }
    case 'tcp_health_check': {
      const t = hc.tcp_health_check!;
      const tp = joinPath(p, 'tcp_health_check');
      if (t.proxy_protocol_config) errors.push({ path: joinPath(tp, 'proxy_protocol_config'), reason: 'PROXY protocol health checks are not supported' });
      checker = { kind: 'tcp', send: payload(t.send, joinPath(tp, 'send'), errors), receive: t.receive.flatMap((r, i) => payload(r, joinPath(tp, `receive[${i}]`), errors) ?? []) };
      break;
    }
    case 'grpc_health_check': {
      const g = hc.grpc_health_check!;
      checker = {
        kind: 'grpc',
        serviceName: g.service_name,
        authority: g.authority,
        initialMetadata: g.initial_metadata.flatMap((o) => (o.header ? [{ key: o.header.key.toLowerCase(), value: o.header.value || o.header.raw_value.toString() }] : [])),
      };
      break;
    }
    case 'custom_health_check':
      errors.push({ path: joinPath(p, 'custom_health_check'), reason: `custom health checker ${hc.custom_health_check?.name ?? ''} is not supported` });
      break;
    default:
      errors.push({ path: p, reason: 'one of http_health_check, tcp_health_check, grpc_health_check or custom_health_check is required' });
  }
  if (!checker) return undefined;
  const unhealthyIntervalMs = durationMs(hc.unhealthy_interval, intervalMs);
  return {
    timeoutMs,
    intervalMs,
    intervalJitterMs: durationMs(hc.interval_jitter, 0),
    intervalJitterPercent: hc.interval_jitter_percent,
    initialJitterMs: durationMs(hc.initial_jitter, 0),
    unhealthyThreshold: wrapped(hc.unhealthy_threshold, 1),
    healthyThreshold: wrapped(hc.healthy_threshold, 1),
    noTrafficIntervalMs: durationMs(hc.no_traffic_interval, 60_000), // 60 s
    noTrafficHealthyIntervalMs: durationMs(hc.no_traffic_healthy_interval, 0),
    unhealthyIntervalMs,
    unhealthyEdgeIntervalMs: durationMs(hc.unhealthy_edge_interval, unhealthyIntervalMs),
    healthyEdgeIntervalMs: durationMs(hc.healthy_edge_interval, intervalMs),
    reuseConnection: wrapped(hc.reuse_connection, true),
    altPort: wrapped(hc.alt_port),
    tlsAlpn: hc.tls_options?.alpn_protocols ?? [],
    transportSocketMatchCriteria: hc.transport_socket_match_criteria ? structToJson(hc.transport_socket_match_criteria) : undefined,
    checker,
  };
}
