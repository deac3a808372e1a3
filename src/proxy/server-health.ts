// Whether the server fails its own health checks (admin /healthcheck/fail, Envoy's
// server.healthCheckFailed()): one process-wide cell the main thread sets and every worker reads.

import type { SharedCounters } from './shared-counters.ts';

const KEY = 'server/healthcheck_failed';

export function setHealthCheckFailed(shared: SharedCounters, failed: boolean): void {
  shared.cell(KEY).store(failed ? 1 : 0);
}

export function healthCheckFailed(shared: SharedCounters): boolean {
  return shared.cell(KEY).load() !== 0;
}
