// Proxy-Wasm ABI constants (proxy-wasm/spec abi-versions v0.1.0, v0.2.0, v0.2.1) and the ABI
// version a module declares through its `proxy_abi_version_*` export marker.

export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_ARGUMENT: 2,
  SERIALIZATION_FAILURE: 3,
  PARSE_FAILURE: 4,
  INVALID_MEMORY_ACCESS: 6,
  EMPTY: 7,
  CAS_MISMATCH: 8,
  INTERNAL_FAILURE: 10,
  UNIMPLEMENTED: 12,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export const Action = { CONTINUE: 0, PAUSE: 1 } as const;

/** Envoy's header return values (ABI 0.2.x); 0.1.0 plugins return 0 or 1 only. */
export const FilterHeadersStatus = { Continue: 0, StopIteration: 1, ContinueAndEndStream: 2, StopAllIterationAndBuffer: 3, StopAllIterationAndWatermark: 4 } as const;
export const FilterDataStatus = { Continue: 0, StopIterationAndBuffer: 1, StopIterationAndWatermark: 2, StopIterationNoBuffer: 3 } as const;

export const BufferType = {
  HTTP_REQUEST_BODY: 0,
  HTTP_RESPONSE_BODY: 1,
  DOWNSTREAM_DATA: 2,
  UPSTREAM_DATA: 3,
  HTTP_CALL_RESPONSE_BODY: 4,
  GRPC_CALL_MESSAGE: 5,
  VM_CONFIGURATION: 6,
  PLUGIN_CONFIGURATION: 7,
  FOREIGN_FUNCTION_ARGUMENTS: 8,
} as const;
export type BufferType = (typeof BufferType)[keyof typeof BufferType];

export const MapType = {
  HTTP_REQUEST_HEADERS: 0,
  HTTP_REQUEST_TRAILERS: 1,
  HTTP_RESPONSE_HEADERS: 2,
  HTTP_RESPONSE_TRAILERS: 3,
  GRPC_CALL_INITIAL_METADATA: 4,
  GRPC_CALL_TRAILING_METADATA: 5,
  HTTP_CALL_RESPONSE_HEADERS: 6,
  HTTP_CALL_RESPONSE_TRAILERS: 7,
} as const;
export type MapType = (typeof MapType)[keyof typeof MapType];

export const StreamType = { HTTP_REQUEST: 0, HTTP_RESPONSE: 1, DOWNSTREAM: 2, UPSTREAM: 3 } as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

export const PeerType = { UNKNOWN: 0, LOCAL: 1, REMOTE: 2 } as const;

export const MetricType = { COUNTER: 0, GAUGE: 1, HISTOGRAM: 2 } as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

export const LogLevel = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

export const WasiErrno = { SUCCESS: 0, BADF: 8, FAULT: 21, INVAL: 28, NOSYS: 52, NOTSUP: 58 } as const;

export type AbiVersion = '0.1.0' | '0.2.0' | '0.2.1';

const MARKERS: ReadonlyArray<readonly [string, AbiVersion]> = [
  ['proxy_abi_version_0_2_1', '0.2.1'],
  ['proxy_abi_version_0_2_0', '0.2.0'],
  ['proxy_abi_version_0_1_0', '0.1.0'],
];

/** The ABI version a module declares, or undefined when it exports no known marker. */
export function abiVersionOf(exportNames: readonly string[]): AbiVersion | undefined {
  const names = new Set(exportNames);
  for (const [marker, v] of MARKERS) if (names.has(marker)) return v;
  return undefined;
}

const STATUS_NAMES = new Map<number, string>(Object.entries(Status).map(([k, v]) => [v, k]));

/** OK, NOT_FOUND, ... for a proxy_status_t (the number itself when unknown). */
export function statusName(s: number): string {
  return STATUS_NAMES.get(s) ?? String(s);
}
