// Http2ProtocolOptions.connection_keepalive (a listener's HCM or a cluster) as the codec's
// KeepaliveOptions. The proto's own rules (timeout required, durations >= 1 ms) are checked when
// the config is decoded.

import type { KeepaliveSettings__Output } from '../../../generated/envoy/config/core/v3/KeepaliveSettings.ts';
import { durationMs } from '../../../config/values.ts';
import type { KeepaliveOptions } from './keepalive.ts';

/** Envoy's default interval_jitter, percent. */
const DEFAULT_JITTER_PERCENT = 15;

/** undefined: no keepalive (the field is unset). */
export function keepaliveOptions(k: KeepaliveSettings__Output | null | undefined): KeepaliveOptions | undefined {
  if (!k) return undefined;
  return {
    intervalMs: durationMs(k.interval, 0),
    timeoutMs: durationMs(k.timeout, 0),
    jitterPercent: k.interval_jitter ? k.interval_jitter.value : DEFAULT_JITTER_PERCENT,
    idleIntervalMs: durationMs(k.connection_idle_interval, 0),
  };
}
