// `/clusters` and `/listeners` in Envoy's text (`name::host::stat::value`) and JSON
// (envoy.admin.v3.Clusters / Listeners, proto3 JSON: defaults omitted, uint64 as strings). Pure functions.

import type { CircuitBreakerThresholds, ClusterStatus, HealthFlag, HostStatus, ListenerStatus } from './source.ts';
import { hostKey } from '../host-port.ts';

const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };

// Envoy's host stats: counters then gauges, in the order Envoy's Host lists them.
const HOST_COUNTERS = ['cx_connect_fail', 'cx_total', 'rq_error', 'rq_success', 'rq_timeout', 'rq_total'] as const;
const HOST_GAUGES = ['cx_active', 'rq_active'] as const;

function flagsOf(h: HostStatus): readonly HealthFlag[] {
  if (h.healthFlags) return h.healthFlags;
  return h.health === 'unhealthy' ? ['failed_eds_health'] : h.health === 'degraded' ? ['degraded_eds_health'] : [];
}

function hostStats(h: HostStatus): Array<{ name: string; value: number; gauge: boolean }> {
  const out: Array<{ name: string; value: number; gauge: boolean }> = [];
  const counters = { ...Object.fromEntries(HOST_COUNTERS.map((n) => [n, 0])), ...h.counters };
  const gauges = { ...Object.fromEntries(HOST_GAUGES.map((n) => [n, 0])), ...h.gauges };
  for (const [name, value] of Object.entries(counters)) out.push({ name, value, gauge: false });
  for (const [name, value] of Object.entries(gauges)) out.push({ name, value, gauge: true });
  return out;
}

function thresholdsText(cluster: string, priority: string, t: CircuitBreakerThresholds): string {
  return (
    `${cluster}::${priority}_priority::max_connections::${t.maxConnections}\n` +
    `${cluster}::${priority}_priority::max_pending_requests::${t.maxPendingRequests}\n` +
    `${cluster}::${priority}_priority::max_requests::${t.maxRequests}\n` +
    `${cluster}::${priority}_priority::max_retries::${t.maxRetries}\n`
  );
}

/** Envoy's `/clusters` text form. */
export function clustersText(clusters: readonly ClusterStatus[]): string {
  let out = '';
  for (const c of clusters) {
    const n = c.name;
    out += `${n}::observability_name::${c.observabilityName ?? n}\n`;
    out += thresholdsText(n, 'default', c.circuitBreakers?.default ?? DEFAULT_THRESHOLDS);
    out += thresholdsText(n, 'high', c.circuitBreakers?.high ?? DEFAULT_THRESHOLDS);
    out += `${n}::added_via_api::${c.addedViaApi}\n`;
    if (c.edsServiceName) out += `${n}::eds_service_name::${c.edsServiceName}\n`;
    for (const h of c.hosts) {
      const p = `${n}::${hostKey(h.address, h.port)}::`;
      const stats = hostStats(h).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const s of stats) out += `${p}${s.name}::${s.value}\n`;
      const flags = flagsOf(h);
      out += `${p}hostname::${h.hostname ?? ''}\n`;
      out += `${p}health_flags::${flags.length ? flags.map((f) => `/${f}`).join('') : 'healthy'}\n`;
      out += `${p}weight::${h.weight}\n`;
      out += `${p}region::${h.locality?.region ?? ''}\n`;
      out += `${p}zone::${h.locality?.zone ?? ''}\n`;
      out += `${p}sub_zone::${h.locality?.subZone ?? ''}\n`;
      out += `${p}canary::false\n`;
      out += `${p}priority::${h.priority}\n`;
      out += `${p}success_rate::-1\n`;
      out += `${p}local_origin_success_rate::-1\n`;
    }
  }
  return out;
}

function socketAddress(address: string, port: number): unknown {
  return { socket_address: port ? { address, port_value: port } : { address } };
}

function thresholdsJson(t: CircuitBreakerThresholds, high: boolean): Record<string, unknown> {
  return {
    ...(high ? { priority: 'HIGH' } : {}),
    max_connections: t.maxConnections,
    max_pending_requests: t.maxPendingRequests,
    max_requests: t.maxRequests,
    max_retries: t.maxRetries,
  };
}

function healthStatusJson(h: HostStatus): Record<string, unknown> {
  const flags = new Set(flagsOf(h));
  const out: Record<string, unknown> = {};
  if (flags.has('failed_active_hc')) out.failed_active_health_check = true;
  if (flags.has('failed_outlier_check')) out.failed_outlier_check = true;
  out.eds_health_status = flags.has('failed_eds_health') ? 'UNHEALTHY' : flags.has('degraded_eds_health') ? 'DEGRADED' : flags.has('eds_status_draining') ? 'DRAINING' : 'HEALTHY';
  if (flags.has('degraded_active_hc')) out.failed_active_degraded_check = true;
  if (flags.has('pending_dynamic_removal')) out.pending_dynamic_removal = true;
  if (flags.has('pending_active_hc')) out.pending_active_hc = true;
  if (flags.has('excluded_via_immediate_hc_fail')) out.excluded_via_immediate_hc_fail = true;
  if (flags.has('active_hc_timeout')) out.active_hc_timeout = true;
  return out;
}

/** Envoy's `/clusters?format=json` (envoy.admin.v3.Clusters). */
export function clustersJson(clusters: readonly ClusterStatus[]): unknown {
  return {
    cluster_statuses: clusters.map((c) => {
      const status: Record<string, unknown> = { name: c.name };
      if (c.addedViaApi) status.added_via_api = true;
      status.host_statuses = c.hosts.map((h) => {
        const host: Record<string, unknown> = {
          address: socketAddress(h.address, h.port),
          // proto3 JSON: uint64 as a string, zero values and the COUNTER type (0) omitted.
          stats: hostStats(h).map((s) => ({ ...(s.value ? { value: String(s.value) } : {}), ...(s.gauge ? { type: 'GAUGE' } : {}), name: s.name })),
          health_status: healthStatusJson(h),
          weight: h.weight,
          locality: h.locality ? { ...(h.locality.region && { region: h.locality.region }), ...(h.locality.zone && { zone: h.locality.zone }), ...(h.locality.subZone && { sub_zone: h.locality.subZone }) } : {},
        };
        if (h.hostname) host.hostname = h.hostname;
        if (h.priority) host.priority = h.priority;
        return host;
      });
      status.circuit_breakers = {
        thresholds: [thresholdsJson(c.circuitBreakers?.default ?? DEFAULT_THRESHOLDS, false), thresholdsJson(c.circuitBreakers?.high ?? DEFAULT_THRESHOLDS, true)],
      };
      status.observability_name = c.observabilityName ?? c.name;
      if (c.edsServiceName) status.eds_service_name = c.edsServiceName;
      return status;
    }),
  };
}

/** Envoy's `/listeners` text: `<name>::<address:port>` per listener. */
export function listenersText(listeners: readonly ListenerStatus[]): string {
  return listeners.map((l) => `${l.name}::${hostKey(l.address, l.port)}\n`).join('');
}

/** Envoy's `/listeners?format=json` (envoy.admin.v3.Listeners). */
export function listenersJson(listeners: readonly ListenerStatus[]): unknown {
  return { listener_statuses: listeners.map((l) => ({ name: l.name, local_address: socketAddress(l.address, l.port) })) };
}
