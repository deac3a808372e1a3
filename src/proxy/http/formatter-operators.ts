// Envoy's command operators (`%NAME(arg)%`) as extractors over StreamInfo. Compiling an
// operator fails only for a name Envoy does not know or a malformed argument; real Envoy
// operators that need state legate does not track yet extract nothing (`-`).

import { hostname } from 'node:os';
import type { AddressInfo, StreamInfo } from './stream-info.ts';
import type { HeaderMap } from './headers.ts';
import { compileTimeFormat } from './formatter-time.ts';
import { compileTlsOperator, isTlsOperator } from './formatter-tls.ts';
import { hostKey } from '../host-port.ts';
import { dynamicMetadataValue } from './dynamic-metadata.ts';

/** A formatted value: strings and numbers are typed (JSON keeps numbers); undefined = not set. */
export type FormatValue = string | number | undefined;
export type Extractor = (info: StreamInfo) => FormatValue;

/** Envoy's short response flags in the order `%RESPONSE_FLAGS%` prints them, with the long names. */
export const RESPONSE_FLAG_ORDER: readonly (readonly [short: string, long: string])[] = [
  ['LH', 'FailedLocalHealthCheck'],
  ['UH', 'NoHealthyUpstream'],
  ['UT', 'UpstreamRequestTimeout'],
  ['LR', 'LocalReset'],
  ['UR', 'UpstreamRemoteReset'],
  ['UF', 'UpstreamConnectionFailure'],
  ['UC', 'UpstreamConnectionTermination'],
  ['UO', 'UpstreamOverflow'],
  ['NR', 'NoRouteFound'],
  ['DI', 'DelayInjected'],
  ['FI', 'FaultInjected'],
  ['RL', 'RateLimited'],
  ['UAEX', 'UnauthorizedExternalService'],
  ['RLSE', 'RateLimitServiceError'],
  ['DC', 'DownstreamConnectionTermination'],
  ['URX', 'UpstreamRetryLimitExceeded'],
  ['SI', 'StreamIdleTimeout'],
  ['IH', 'InvalidEnvoyRequestHeaders'],
  ['DPE', 'DownstreamProtocolError'],
  ['UMSDR', 'UpstreamMaxStreamDurationReached'],
  ['RFCF', 'ResponseFromCacheFilter'],
  ['NFCF', 'NoFilterConfigFound'],
  ['DT', 'DurationTimeout'],
  ['UPE', 'UpstreamProtocolError'],
  ['NC', 'NoClusterFound'],
  ['OM', 'OverloadManager'],
  ['DF', 'DnsResolutionFailed'],
  ['DO', 'DropOverload'],
  ['DR', 'DownstreamRemoteReset'],
  ['UDO', 'UnconditionalDropOverload'],
];
export const KNOWN_RESPONSE_FLAGS: ReadonlySet<string> = new Set(RESPONSE_FLAG_ORDER.map(([s]) => s));

/** Joins the stream's response flags in Envoy's order; undefined when none. */
export function responseFlagsString(info: StreamInfo, long = false): string | undefined {
  const set = info.responseFlags as ReadonlySet<string>;
  if (set.size === 0) return undefined;
  let out = '';
  for (const [short, name] of RESPONSE_FLAG_ORDER) {
    if (set.has(short)) out += (out ? ',' : '') + (long ? name : short);
  }
  return out || undefined;
}

/** `1.2.3.4:80`, `[::1]:80`. */
export function addressWithPort(a: AddressInfo | undefined): string | undefined {
  if (!a || !a.address) return undefined;
  return hostKey(a.address, a.port);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === '' ? undefined : s;
}

function ms(from: number | undefined, to: number | undefined): number | undefined {
  return from === undefined || to === undefined ? undefined : Math.floor(to - from);
}

const GRPC_CAMEL = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];
const GRPC_SNAKE = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

function grpcStatus(info: StreamInfo): number | undefined {
  const v = info.responseTrailers?.get('grpc-status') ?? info.responseHeaders?.get('grpc-status');
  if (v === undefined || !/^[0-9]+$/.test(v)) return undefined;
  return Number(v);
}

/** Operators that need no argument, by name. */
const SIMPLE: Record<string, Extractor> = {
  BYTES_RECEIVED: (i) => i.bytesReceived,
  BYTES_SENT: (i) => i.bytesSent,
  PROTOCOL: (i) => nonEmpty(i.protocol),
  RESPONSE_CODE: (i) => i.responseCode ?? 0,
  RESPONSE_CODE_DETAILS: (i) => nonEmpty(i.responseCodeDetails),
  CONNECTION_TERMINATION_DETAILS: (i) => nonEmpty(i.terminationDetails),
  RESPONSE_FLAGS: (i) => responseFlagsString(i),
  RESPONSE_FLAGS_LONG: (i) => responseFlagsString(i, true),
  DURATION: (i) => Math.floor(i.durationMs ?? performance.now() - i.startMono),
  REQUEST_DURATION: () => undefined, // last downstream rx byte: not tracked in StreamInfo yet
  REQUEST_TX_DURATION: () => undefined,
  RESPONSE_DURATION: (i) => ms(i.startMono, i.firstUpstreamRxMono),
  RESPONSE_TX_DURATION: (i) => ms(i.firstUpstreamRxMono, i.lastDownstreamTxMono),
  UPSTREAM_HOST: (i) => addressWithPort(i.upstreamHost),
  UPSTREAM_REMOTE_ADDRESS: (i) => addressWithPort(i.upstreamHost),
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (i) => nonEmpty(i.upstreamHost?.address),
  UPSTREAM_REMOTE_PORT: (i) => i.upstreamHost?.port,
  UPSTREAM_CLUSTER: (i) => nonEmpty(i.clusterName),
  UPSTREAM_LOCAL_ADDRESS: (i) => addressWithPort(i.upstreamLocal),
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (i) => nonEmpty(i.upstreamLocal?.address),
  UPSTREAM_LOCAL_PORT: (i) => i.upstreamLocal?.port,
  UPSTREAM_TRANSPORT_FAILURE_REASON: (i) => nonEmpty(i.upstreamTransportFailureReason),
  // StreamInfo.attemptCount counts retries; Envoy counts attempts (0 when no upstream was tried).
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (i) => (i.upstreamHost === undefined && i.attemptCount === 0 ? 0 : i.attemptCount + 1),
  DOWNSTREAM_REMOTE_ADDRESS: (i) => addressWithPort(i.downstreamRemote),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (i) => nonEmpty(i.downstreamRemote.address),
  DOWNSTREAM_REMOTE_PORT: (i) => i.downstreamRemote.port,
  DOWNSTREAM_LOCAL_ADDRESS: (i) => addressWithPort(i.downstreamLocal),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (i) => nonEmpty(i.downstreamLocal.address),
  DOWNSTREAM_LOCAL_PORT: (i) => i.downstreamLocal.port,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: (i) => addressWithPort(i.downstreamDirectRemote),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (i) => nonEmpty(i.downstreamDirectRemote.address),
  DOWNSTREAM_DIRECT_REMOTE_PORT: (i) => i.downstreamDirectRemote.port,
  REQUESTED_SERVER_NAME: (i) => nonEmpty(i.requestedServerName),
  ROUTE_NAME: (i) => nonEmpty(i.routeName),
  VIRTUAL_HOST_NAME: (i) => nonEmpty(i.virtualHostName),
  VIRTUAL_CLUSTER_NAME: () => undefined, // virtual clusters are not tracked in StreamInfo yet
  CONNECTION_ID: (i) => i.connectionId,
  STREAM_ID: (i) => nonEmpty(i.requestId),
  GRPC_STATUS_NUMBER: grpcStatus,
};

/**
 * Real Envoy operators whose data legate does not have yet (metadata, filter state, wire byte
 * counts...): they compile and extract nothing.
 */
const NOT_YET = new Set<string>([
  'CLUSTER_METADATA', 'UPSTREAM_METADATA', 'ROUTE_METADATA', 'METADATA', 'FILTER_STATE', 'UPSTREAM_FILTER_STATE',
  'PER_REQUEST_STATE', 'CEL', 'TRACE_ID', 'LOCAL_REPLY_BODY', 'ACCESS_LOG_TYPE', 'UPSTREAM_CONNECTION_ID', 'UPSTREAM_PROTOCOL',
  'UPSTREAM_CLUSTER_RAW', 'DOWNSTREAM_TRANSPORT_FAILURE_REASON', 'REQUEST_HEADERS_BYTES', 'RESPONSE_HEADERS_BYTES',
  'RESPONSE_TRAILERS_BYTES', 'UPSTREAM_WIRE_BYTES_SENT', 'UPSTREAM_WIRE_BYTES_RECEIVED', 'UPSTREAM_HEADER_BYTES_SENT',
  'UPSTREAM_HEADER_BYTES_RECEIVED', 'DOWNSTREAM_WIRE_BYTES_SENT', 'DOWNSTREAM_WIRE_BYTES_RECEIVED',
  'DOWNSTREAM_HEADER_BYTES_SENT', 'DOWNSTREAM_HEADER_BYTES_RECEIVED', 'ROUNDTRIP_DURATION', 'COMMON_DURATION',
  'UPSTREAM_CONNECTION_POOL_READY_DURATION', 'DOWNSTREAM_HANDSHAKE_DURATION', 'CUSTOM_FLAGS', 'START_TIME_LOCAL',
  'EMIT_TIME_LOCAL', 'UPSTREAM_LOCAL_CLOSE_REASON', 'DOWNSTREAM_LOCAL_CLOSE_REASON', 'UPSTREAM_DETECTED_CLOSE_TYPE',
  'DOWNSTREAM_DETECTED_CLOSE_TYPE', 'DOWNSTREAM_REMOTE_ADDRESS_ENDPOINT_ID', 'DOWNSTREAM_LOCAL_ADDRESS_ENDPOINT_ID',
  'UPSTREAM_HOST_NAME', 'UPSTREAM_HOST_NAME_WITHOUT_PORT', 'UPSTREAM_REMOTE_ADDRESS_ENDPOINT_ID',
  'DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256', 'DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1', 'DOWNSTREAM_PEER_CHAIN_SERIALS',
  'REQ_WITHOUT_QUERY_AND_FRAGMENT',
]);
// TLS details legate's TlsConnectionInfo does not carry (LOCAL_IP_SAN, TLS_SESSION_ID, OTHERNAME_SAN...);
// the rest are extracted by formatter-tls.ts, which compileOperator asks first.
for (const side of ['DOWNSTREAM', 'UPSTREAM']) {
  for (const who of ['PEER', 'LOCAL']) {
    for (const what of ['URI_SAN', 'DNS_SAN', 'IP_SAN', 'EMAIL_SAN', 'OTHERNAME_SAN', 'SUBJECT']) NOT_YET.add(`${side}_${who}_${what}`);
  }
  for (const what of ['PEER_ISSUER', 'TLS_SESSION_ID', 'TLS_CIPHER', 'TLS_VERSION', 'PEER_FINGERPRINT_256', 'PEER_FINGERPRINT_1', 'PEER_SERIAL', 'PEER_CERT', 'PEER_CERT_V_START', 'PEER_CERT_V_END']) {
    NOT_YET.add(`${side}_${what}`);
  }
}

/** Whether `name` is an Envoy operator legate knows (supported, or accepted and empty). */
export function isKnownOperator(name: string): boolean {
  return name in SIMPLE || name in WITH_ARG || name === 'HOSTNAME' || isTlsOperator(name) || NOT_YET.has(name);
}

/** `X?Y` header arguments: first header, then the alternative. */
function headerExtractor(op: string, arg: string | undefined, pick: (i: StreamInfo) => HeaderMap | undefined, stripQuery: boolean): Extractor | string {
  if (!arg) return `Invalid header configuration. Expected format ${op}(header_name) or ${op}(header_name?alternative_header_name)`;
  const parts = arg.split('?');
  if (parts.length > 2) return `More than 1 alternative header specified in token: ${arg}`;
  const main = parts[0]!.toLowerCase();
  const alt = parts[1]?.toLowerCase();
  if (!main || alt === '') return `Invalid header configuration: ${op}(${arg})`;
  const strip = (v: string | undefined): string | undefined => {
    if (v === undefined || !stripQuery) return v;
    const q = v.search(/[?#]/);
    return q < 0 ? v : v.slice(0, q);
  };
  if (alt === undefined) return (i) => strip(pick(i)?.get(main));
  return (i) => {
    const h = pick(i);
    return strip(h?.get(main) ?? h?.get(alt));
  };
}

/** Operators that read their argument. Each returns an extractor or an error message. */
const WITH_ARG: Record<string, (arg: string | undefined) => Extractor | string> = {
  REQ: (arg) => headerExtractor('REQ', arg, (i) => i.requestHeaders, false),
  RESP: (arg) => headerExtractor('RESP', arg, (i) => i.responseHeaders, false),
  TRAILER: (arg) => headerExtractor('TRAILER', arg, (i) => i.responseTrailers, false),
  REQ_WITHOUT_QUERY: (arg) => headerExtractor('REQ_WITHOUT_QUERY', arg, (i) => i.requestHeaders, true),
  START_TIME: (arg) => {
    const fmt = compileTimeFormat(arg);
    return (i) => fmt(i.startTime);
  },
  EMIT_TIME: (arg) => {
    const fmt = compileTimeFormat(arg);
    return () => fmt(Date.now());
  },
  // NAMESPACE[:KEY...]: a string as it is, a number, a bool as true/false, anything else as JSON.
  DYNAMIC_METADATA: (arg) => {
    const [ns, ...path] = (arg ?? '').split(':');
    if (!ns) return 'DYNAMIC_METADATA requires a filter namespace: DYNAMIC_METADATA(NAMESPACE:KEY*)';
    return (i) => {
      const v = dynamicMetadataValue(i, ns, path);
      if (v === undefined || v === null) return undefined;
      if (typeof v === 'string' || typeof v === 'number') return v;
      return typeof v === 'boolean' ? String(v) : JSON.stringify(v);
    };
  },
  ENVIRONMENT: (arg) => {
    if (!arg) return 'ENVIRONMENT requires an environment variable name: ENVIRONMENT(NAME)';
    const v = nonEmpty(process.env[arg]);
    return () => v;
  },
  QUERY_PARAM: (arg) => {
    if (!arg) return 'QUERY_PARAM requires a parameter name: QUERY_PARAM(name)';
    return (i) => {
      const path = i.requestHeaders?.get(':path');
      const q = path?.indexOf('?') ?? -1;
      if (!path || q < 0) return undefined;
      return new URLSearchParams(path.slice(q + 1)).get(arg) ?? undefined;
    };
  },
  GRPC_STATUS: (arg) => {
    const form = arg || 'CAMEL_STRING';
    if (form !== 'CAMEL_STRING' && form !== 'SNAKE_STRING' && form !== 'NUMBER') return `GRPC_STATUS format must be CAMEL_STRING, SNAKE_STRING or NUMBER, not ${form}`;
    return (i) => {
      const s = grpcStatus(i);
      if (s === undefined || form === 'NUMBER') return s;
      return (form === 'CAMEL_STRING' ? GRPC_CAMEL : GRPC_SNAKE)[s] ?? String(s);
    };
  },
};

/** Compiles one operator (`name`, `arg` between the parentheses) into an extractor, or an error message. */
export function compileOperator(name: string, arg: string | undefined): Extractor | string {
  const simple = SIMPLE[name];
  if (simple) return simple;
  const withArg = WITH_ARG[name];
  if (withArg) return withArg(arg);
  if (name === 'HOSTNAME') {
    const h = hostname();
    return () => h;
  }
  const tls = compileTlsOperator(name, arg);
  if (tls) return tls;
  if (NOT_YET.has(name)) return () => undefined;
  return `Not supported field in StreamInfo: ${name}`;
}
