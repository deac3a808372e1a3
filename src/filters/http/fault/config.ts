// Parses envoy.extensions.filters.http.fault.v3.HTTPFault into a frozen FaultConfig: the abort and
// delay providers (fixed or header-controlled), the request matchers, max_active_faults and the
// runtime keys, with Envoy's defaults. The same parser reads per-route overrides. Errors name fields.

import { deepFreeze, joinPath, ok, type ConfigError, type Result } from '../../../config/result.ts';
import { durationMs } from '../../../config/values.ts';
import type { ParseContext } from '../../registry.ts';
import type { FractionalPercentValue } from '../../../proxy/runtime.ts';
import { compileHeaderMatchers, type HeaderPredicate } from '../../../proxy/http/matchers.ts';
import type { HTTPFault__Output } from '../../../generated/envoy/extensions/filters/http/fault/v3/HTTPFault.ts';
import type { FractionalPercent__Output } from '../../../generated/envoy/type/v3/FractionalPercent.ts';

/** Envoy's default runtime keys (fault_filter.h RuntimeKeys). */
export const FaultRuntimeKeys = {
  delayPercent: 'fault.http.delay.fixed_delay_percent',
  abortPercent: 'fault.http.abort.abort_percent',
  delayDuration: 'fault.http.delay.fixed_duration_ms',
  abortHttpStatus: 'fault.http.abort.http_status',
  abortGrpcStatus: 'fault.http.abort.grpc_status',
  maxActiveFaults: 'fault.http.max_active_faults',
} as const;

/** Request headers that control header faults (Envoy's Filters::Common::Fault::HeaderNames). */
export const FaultHeaders = {
  delayRequest: 'x-envoy-fault-delay-request',
  delayRequestPercentage: 'x-envoy-fault-delay-request-percentage',
  abortRequest: 'x-envoy-fault-abort-request',
  abortGrpcRequest: 'x-envoy-fault-abort-grpc-request',
  abortRequestPercentage: 'x-envoy-fault-abort-request-percentage',
  downstreamServiceNode: 'x-envoy-downstream-service-node',
  downstreamServiceCluster: 'x-envoy-downstream-service-cluster',
} as const;

/** What an abort answers with: a fixed HTTP status, a fixed gRPC status, or whatever the request headers say. */
export type AbortSpec = { readonly kind: 'http'; readonly status: number } | { readonly kind: 'grpc'; readonly status: number } | { readonly kind: 'header' };

export interface FaultAbortConfig {
  readonly spec: AbortSpec;
  /** Configured percentage (proto default 0/HUNDRED); header faults cap the header's numerator by it. */
  readonly percentage: FractionalPercentValue;
}

export type DelaySpec = { readonly kind: 'fixed'; readonly ms: number } | { readonly kind: 'header' };

export interface FaultDelayConfig {
  readonly spec: DelaySpec;
  readonly percentage: FractionalPercentValue;
}

export interface FaultConfig {
  readonly abort: FaultAbortConfig | undefined;
  readonly delay: FaultDelayConfig | undefined;
  /** Only requests routed to this cluster get faults; '' = every cluster. */
  readonly upstreamCluster: string;
  /** All must match (Envoy's HeaderUtility::matchHeaders); undefined = every request. */
  readonly headers: HeaderPredicate | undefined;
  /** x-envoy-downstream-service-node must be one of these; empty = every downstream. */
  readonly downstreamNodes: ReadonlySet<string>;
  /** undefined = unlimited. The runtime key below overrides it either way. */
  readonly maxActiveFaults: number | undefined;
  readonly runtimeKeys: {
    readonly delayPercent: string;
    readonly abortPercent: string;
    readonly delayDuration: string;
    readonly abortHttpStatus: string;
    readonly abortGrpcStatus: string;
    readonly maxActiveFaults: string;
  };
  readonly disableDownstreamClusterStats: boolean;
}

const DENOMINATORS = new Set(['HUNDRED', 'TEN_THOUSAND', 'MILLION']);

function percentage(p: FractionalPercent__Output | null, path: string, errors: ConfigError[]): FractionalPercentValue {
  if (!p) return { numerator: 0, denominator: 'HUNDRED' };
  const denominator = String(p.denominator);
  if (!DENOMINATORS.has(denominator)) {
    errors.push({ path: joinPath(path, 'denominator'), reason: `value must be one of HUNDRED, TEN_THOUSAND, MILLION (got ${denominator})` });
    return { numerator: 0, denominator: 'HUNDRED' };
  }
  return { numerator: p.numerator, denominator: denominator as FractionalPercentValue['denominator'] };
}

function parseAbort(a: NonNullable<HTTPFault__Output['abort']>, path: string, errors: ConfigError[]): FaultAbortConfig | undefined {
  const pct = percentage(a.percentage, joinPath(path, 'percentage'), errors);
  switch (a.error_type) {
    case 'http_status': {
      const s = a.http_status ?? 0;
      if (s < 200 || s >= 600) {
        errors.push({ path: joinPath(path, 'http_status'), reason: 'value must be inside range [200, 600)' });
        return undefined;
      }
      return { spec: { kind: 'http', status: s }, percentage: pct };
    }
    case 'grpc_status':
      return { spec: { kind: 'grpc', status: a.grpc_status ?? 0 }, percentage: pct };
    case 'header_abort':
      return { spec: { kind: 'header' }, percentage: pct };
    default:
      errors.push({ path: joinPath(path, 'error_type'), reason: 'value is required (one of http_status, grpc_status, header_abort)' });
      return undefined;
  }
}

function parseDelay(d: NonNullable<HTTPFault__Output['delay']>, path: string, errors: ConfigError[]): FaultDelayConfig | undefined {
  const pct = percentage(d.percentage, joinPath(path, 'percentage'), errors);
  switch (d.fault_delay_secifier) {
    case 'fixed_delay': {
      const ms = durationMs(d.fixed_delay);
      const positive = d.fixed_delay && (Number(d.fixed_delay.seconds) > 0 || (Number(d.fixed_delay.seconds) === 0 && d.fixed_delay.nanos > 0));
      if (ms === undefined || !positive) {
        errors.push({ path: joinPath(path, 'fixed_delay'), reason: 'value must be greater than 0s' });
        return undefined;
      }
      return { spec: { kind: 'fixed', ms }, percentage: pct };
    }
    case 'header_delay':
      return { spec: { kind: 'header' }, percentage: pct };
    default:
      errors.push({ path: joinPath(path, 'fault_delay_secifier'), reason: 'value is required (one of fixed_delay, header_delay)' });
      return undefined;
  }
}

/** HTTPFault (proto-loader form) -> FaultConfig; used for the filter config and for per-route overrides. */
export function parseFault(message: unknown, ctx: ParseContext): Result<FaultConfig> {
  const m = message as HTTPFault__Output;
  const errors: ConfigError[] = [];
  const path = ctx.path;
  const abort = m.abort ? parseAbort(m.abort, joinPath(path, 'abort'), errors) : undefined;
  const delay = m.delay ? parseDelay(m.delay, joinPath(path, 'delay'), errors) : undefined;
  if (m.response_rate_limit) {
    errors.push({ path: joinPath(path, 'response_rate_limit'), reason: 'response rate limit faults are not supported by legate yet' });
  }
  const headers = compileHeaderMatchers(m.headers ?? [], joinPath(path, 'headers'));
  if (!headers.ok) errors.push(...headers.errors);
  if (errors.length > 0) return { ok: false, errors };
  const key = (v: string | undefined, dflt: string): string => (v ? v : dflt);
  return ok(
    deepFreeze({
      abort,
      delay,
      upstreamCluster: m.upstream_cluster ?? '',
      headers: headers.ok ? headers.value : undefined,
      downstreamNodes: new Set(m.downstream_nodes ?? []),
      maxActiveFaults: m.max_active_faults ? m.max_active_faults.value : undefined,
      runtimeKeys: {
        delayPercent: key(m.delay_percent_runtime, FaultRuntimeKeys.delayPercent),
        abortPercent: key(m.abort_percent_runtime, FaultRuntimeKeys.abortPercent),
        delayDuration: key(m.delay_duration_runtime, FaultRuntimeKeys.delayDuration),
        abortHttpStatus: key(m.abort_http_status_runtime, FaultRuntimeKeys.abortHttpStatus),
        abortGrpcStatus: key(m.abort_grpc_status_runtime, FaultRuntimeKeys.abortGrpcStatus),
        maxActiveFaults: key(m.max_active_faults_runtime, FaultRuntimeKeys.maxActiveFaults),
      },
      disableDownstreamClusterStats: m.disable_downstream_cluster_stats ?? false,
    }),
  );
}
