// Stable error codes, error sources and Envoy response flags: every local reply and
// access-log flag in legate is made from here.

export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config';

export const ErrorCode = {
  UPSTREAM_CONNECT_FAILURE: 'LEG_UPSTREAM_CONNECT_FAILURE',
  UPSTREAM_CONNECT_TIMEOUT: 'LEG_UPSTREAM_CONNECT_TIMEOUT',
  UPSTREAM_RESET: 'LEG_UPSTREAM_RESET',
  UPSTREAM_TIMEOUT: 'LEG_UPSTREAM_TIMEOUT',
  UPSTREAM_PROTOCOL_ERROR: 'LEG_UPSTREAM_PROTOCOL_ERROR',
  NO_HEALTHY_UPSTREAM: 'LEG_NO_HEALTHY_UPSTREAM',
  NO_ROUTE: 'LEG_NO_ROUTE',
  NO_CLUSTER: 'LEG_NO_CLUSTER',
  DOWNSTREAM_RESET: 'LEG_DOWNSTREAM_RESET',
  DOWNSTREAM_PROTOCOL_ERROR: 'LEG_DOWNSTREAM_PROTOCOL_ERROR',
  OVERFLOW: 'LEG_OVERFLOW',
  INTERNAL: 'LEG_INTERNAL',
  CONFIG: 'LEG_CONFIG',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Envoy's response flags (access log `%RESPONSE_FLAGS%`). */
export const ResponseFlag = {
  FailedLocalHealthCheck: 'LH',
  NoHealthyUpstream: 'UH',
  UpstreamRequestTimeout: 'UT',
  LocalReset: 'LR',
  UpstreamRemoteReset: 'UR',
  UpstreamConnectionFailure: 'UF',
  UpstreamConnectionTermination: 'UC',
  UpstreamOverflow: 'UO',
  UpstreamRetryLimitExceeded: 'URX',
  NoRouteFound: 'NR',
  DelayInjected: 'DI',
  FaultInjected: 'FI',
  RateLimited: 'RL',
  UnauthorizedExternalService: 'UAEX',
  RateLimitServiceError: 'RLSE',
  DownstreamConnectionTermination: 'DC',
  StreamIdleTimeout: 'SI',
  DownstreamProtocolError: 'DPE',
  UpstreamProtocolError: 'UPE',
  NoClusterFound: 'NC',
  DurationTimeout: 'DT',
  UpstreamMaxStreamDurationReached: 'UMSDR',
  OverloadManager: 'OM',
  InvalidEnvoyRequestHeaders: 'IH',
} as const;
export type ResponseFlag = (typeof ResponseFlag)[keyof typeof ResponseFlag];

export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  /** Whether the router may retry the request after this error (reset, connect failure...). */
  readonly retryable: boolean;
  readonly flag: ResponseFlag | undefined;

  constructor(code: ErrorCode, message: string, opts: { source: ErrorSource; retryable?: boolean; flag?: ResponseFlag; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.code = code;
    this.source = opts.source;
    this.retryable = opts.retryable ?? false;
    this.flag = opts.flag;
  }
}

/** A local reply Envoy would send: status, body, and the details string for `%RESPONSE_CODE_DETAILS%`. */
export interface LocalReply {
  readonly status: number;
  readonly body: string;
  readonly details: string;
  readonly flag?: ResponseFlag;
}

export const LocalReplies = {
  noRoute: { status: 404, body: '', details: 'route_not_found', flag: ResponseFlag.NoRouteFound },
  noCluster: { status: 503, body: '', details: 'cluster_not_found', flag: ResponseFlag.NoClusterFound },
  noHealthyUpstream: { status: 503, body: 'no healthy upstream', details: 'no_healthy_upstream', flag: ResponseFlag.NoHealthyUpstream },
  upstreamTimeout: { status: 504, body: 'upstream request timeout', details: 'upstream_response_timeout', flag: ResponseFlag.UpstreamRequestTimeout },
  connectFailure: {
    status: 503,
    body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    details: 'upstream_reset_before_response_started{connection_failure}',
    flag: ResponseFlag.UpstreamConnectionFailure,
  },
  upstreamReset: {
    status: 503,
    body: 'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
    details: 'upstream_reset_before_response_started{remote_reset}',
    flag: ResponseFlag.UpstreamRemoteReset,
  },
  overflow: { status: 503, body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow', details: 'upstream_reset_before_response_started{overflow}', flag: ResponseFlag.UpstreamOverflow },
  streamIdleTimeout: { status: 408, body: 'stream timeout', details: 'stream_idle_timeout', flag: ResponseFlag.StreamIdleTimeout },
  requestTimeout: { status: 408, body: 'request timeout', details: 'request_overall_timeout' },
  headersTooLarge: { status: 431, body: 'Request Header Fields Too Large', details: 'request_headers_too_large' },
} as const satisfies Record<string, LocalReply>;
