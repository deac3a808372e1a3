// parseOutlierDetection: Cluster.outlier_detection -> a frozen OutlierDetectionConfig with Envoy's
// defaults filled in. Never throws; problems are ConfigErrors naming their field path.

import type { OutlierDetection__Output } from '../../../generated/envoy/config/cluster/v3/OutlierDetection.ts';
import type { ConfigError } from '../../../config/result.ts';
import { joinPath } from '../../../config/result.ts';
import { durationMs, wrapped } from '../../../config/values.ts';

export interface OutlierDetectionConfig {
  readonly consecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly consecutiveLocalOriginFailure: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionTimeJitterMs: number;
  readonly maxEjectionPercent: number;
  /** always_eject_one_host: the first ejection happens whatever max_ejection_percent says. */
  readonly alwaysEjectOneHost: boolean;
  /** enforcing_* percentages: the chance a detected outlier is really ejected. */
  readonly enforcingConsecutive5xx: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly enforcingSuccessRate: number;
  readonly enforcingLocalOriginSuccessRate: number;
  readonly enforcingFailurePercentage: number;
  readonly enforcingFailurePercentageLocalOrigin: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  /** success_rate_stdev_factor / 1000 (1900 -> 1.9). */
  readonly successRateStdevFactor: number;
  readonly failurePercentageThreshold: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly successfulActiveHealthCheckUnejectHost: boolean;
}

export function parseOutlierDetection(o: OutlierDetection__Output, path: string, errors: ConfigError[]): OutlierDetectionConfig {
  const pct = (name: keyof OutlierDetection__Output, def: number): number => {
    const v = wrapped(o[name] as { value: number } | null, def);
    if (v > 100) errors.push({ path: joinPath(path, `${String(name)}.value`), reason: 'value must be less than or equal to 100' });
    return v;
  };
  const intervalMs = durationMs(o.interval, 10_000); // 10 s
  if (o.interval && intervalMs <= 0) errors.push({ path: joinPath(path, 'interval'), reason: 'value must be greater than 0s' });
  const baseEjectionTimeMs = durationMs(o.base_ejection_time, 30_000); // 30 s
  if (o.base_ejection_time && baseEjectionTimeMs <= 0) errors.push({ path: joinPath(path, 'base_ejection_time'), reason: 'value must be greater than 0s' });
  // Unset: 300 s or base_ejection_time, whichever is larger (Envoy's rule).
  let maxEjectionTimeMs = Math.max(300_000, baseEjectionTimeMs);
  if (o.max_ejection_time) {
    maxEjectionTimeMs = durationMs(o.max_ejection_time, 300_000);
    if (maxEjectionTimeMs <= 0) errors.push({ path: joinPath(path, 'max_ejection_time'), reason: 'value must be greater than 0s' });
    else if (baseEjectionTimeMs > maxEjectionTimeMs) errors.push({ path: joinPath(path, 'max_ejection_time'), reason: "outlier detector's max_ejection_time cannot be smaller than base_ejection_time" });
  }
  if (o.monitors.length > 0) errors.push({ path: joinPath(path, 'monitors'), reason: 'outlier detection monitors are not supported' });
  return {
    consecutive5xx: wrapped(o.consecutive_5xx, 5),
    consecutiveGatewayFailure: wrapped(o.consecutive_gateway_failure, 5),
    consecutiveLocalOriginFailure: wrapped(o.consecutive_local_origin_failure, 5),
    splitExternalLocalOriginErrors: o.split_external_local_origin_errors,
    intervalMs,
    baseEjectionTimeMs,
    maxEjectionTimeMs,
    maxEjectionTimeJitterMs: durationMs(o.max_ejection_time_jitter, 0),
    maxEjectionPercent: pct('max_ejection_percent', 10),
    alwaysEjectOneHost: wrapped(o.always_eject_one_host, false),
    enforcingConsecutive5xx: pct('enforcing_consecutive_5xx', 100),
    enforcingConsecutiveGatewayFailure: pct('enforcing_consecutive_gateway_failure', 0),
    enforcingConsecutiveLocalOriginFailure: pct('enforcing_consecutive_local_origin_failure', 100),
    enforcingSuccessRate: pct('enforcing_success_rate', 100),
    enforcingLocalOriginSuccessRate: pct('enforcing_local_origin_success_rate', 100),
    enforcingFailurePercentage: pct('enforcing_failure_percentage', 0),
    enforcingFailurePercentageLocalOrigin: pct('enforcing_failure_percentage_local_origin', 0),
    successRateMinimumHosts: wrapped(o.success_rate_minimum_hosts, 5),
    successRateRequestVolume: wrapped(o.success_rate_request_volume, 100),
    successRateStdevFactor: wrapped(o.success_rate_stdev_factor, 1900) / 1000,
    failurePercentageThreshold: pct('failure_percentage_threshold', 85),
    failurePercentageMinimumHosts: wrapped(o.failure_percentage_minimum_hosts, 5),
    failurePercentageRequestVolume: wrapped(o.failure_percentage_request_volume, 50),
    successfulActiveHealthCheckUnejectHost: wrapped(o.successful_active_health_check_uneject_host, true),
  };
}
