// Envoy's default limits, each with its unit. Config may override them per listener/HCM/cluster.

export const Limits = {
  maxRequestHeadersKb: 60, // KiB, HttpConnectionManager.max_request_headers_kb
  maxHeadersCount: 100, // headers, HttpProtocolOptions.max_headers_count
  streamIdleTimeoutMs: 5 * 60 * 1000, // 5 min, HCM stream_idle_timeout
  requestTimeoutMs: 0, // disabled, HCM request_timeout
  requestHeadersTimeoutMs: 0, // disabled
  connectionIdleTimeoutMs: 60 * 60 * 1000, // 1 h, common_http_protocol_options.idle_timeout
  routeTimeoutMs: 15 * 1000, // 15 s, RouteAction.timeout
  connectTimeoutMs: 5 * 1000, // 5 s, Cluster.connect_timeout
  perConnectionBufferLimitBytes: 1024 * 1024, // 1 MiB
  tcpProxyIdleTimeoutMs: 60 * 60 * 1000, // 1 h, TcpProxy.idle_timeout
  tcpProxyMaxConnectAttempts: 1,
  drainTimeS: 600, // s, --drain-time-s
  parentShutdownTimeS: 900, // s, --parent-shutdown-time-s
  dnsRefreshRateMs: 5 * 1000, // 5 s, Cluster.dns_refresh_rate
  http2MaxConcurrentStreams: 2147483647,
  http2InitialStreamWindowSize: 268435456, // 256 MiB
  http2InitialConnectionWindowSize: 268435456, // 256 MiB
} as const;
