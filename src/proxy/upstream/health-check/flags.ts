// Per-host health flags (Envoy's Host::HealthFlag): active health checking and outlier detection
// mark a host independently, and Host.health is derived from the EDS status plus every flag.
// State lives beside the Host object (a WeakMap), so hosts need no extra fields and go with it.

import type { Host, HostHealth } from '../types.ts';

export const FAILED_ACTIVE_HC = 1;
export const FAILED_OUTLIER_CHECK = 2;
export const DEGRADED_ACTIVE_HC = 4;
export const PENDING_ACTIVE_HC = 8;
export const ACTIVE_HC_TIMEOUT = 16;

/** The flags the active health checker owns (published across workers). */
export const ACTIVE_HC_FLAGS = FAILED_ACTIVE_HC | DEGRADED_ACTIVE_HC | PENDING_ACTIVE_HC | ACTIVE_HC_TIMEOUT;

/** Names as Envoy's HostUtility::healthFlagsToString prints them, in its order. */
export type HealthFlagName =
  | 'failed_active_hc'
  | 'failed_outlier_check'
  | 'failed_eds_health'
  | 'degraded_active_hc'
  | 'degraded_eds_health'
  | 'pending_active_hc'
  | 'active_hc_timeout';

interface HostState {
  /** The health the endpoint was configured (or EDS-reported) with. */
  readonly eds: HostHealth;
  flags: number;
}

const states = new WeakMap<Host, HostState>();

function stateOf(host: Host): HostState {
  let s = states.get(host);
  if (!s) {
    // First touch: the host's health is still its configured (EDS) health.
    s = { eds: host.health, flags: 0 };
    states.set(host, s);
  }
  return s;
}

/** Envoy's coarseHealth(): any failure flag -> unhealthy; else any degraded flag -> degraded. */
function derive(s: HostState): HostHealth {
  if (s.eds === 'unhealthy' || s.flags & (FAILED_ACTIVE_HC | FAILED_OUTLIER_CHECK)) return 'unhealthy';
  if (s.eds === 'degraded' || s.flags & DEGRADED_ACTIVE_HC) return 'degraded';
  return 'healthy';
}

export function hostFlags(host: Host): number {
  return states.get(host)?.flags ?? 0;
}

/** Sets (`on`) or clears `mask`; returns true when Host.health changed (the LB needs a rebuild). */
export function setHostFlags(host: Host, mask: number, on: boolean): boolean {
  const s = stateOf(host);
  s.flags = on ? s.flags | mask : s.flags & ~mask;
  const h = derive(s);
  if (h === host.health) return false;
  host.health = h;
  return true;
}

/** Replaces the bits of `mask` with those of `value`; true when Host.health changed. */
export function assignHostFlags(host: Host, mask: number, value: number): boolean {
  const s = stateOf(host);
  s.flags = (s.flags & ~mask) | (value & mask);
  const h = derive(s);
  if (h === host.health) return false;
  host.health = h;
  return true;
}

export function hasHostFlag(host: Host, flag: number): boolean {
  return (hostFlags(host) & flag) !== 0;
}

/** The host's flags for `/clusters` (`/failed_active_hc/failed_outlier_check`); empty -> healthy. */
export function healthFlagNames(host: Host): HealthFlagName[] {
  const s = states.get(host);
  const eds = s ? s.eds : host.health;
  const f = s?.flags ?? 0;
  const out: HealthFlagName[] = [];
  if (f & FAILED_ACTIVE_HC) out.push('failed_active_hc');
  if (f & FAILED_OUTLIER_CHECK) out.push('failed_outlier_check');
  if (eds === 'unhealthy') out.push('failed_eds_health');
  if (f & DEGRADED_ACTIVE_HC) out.push('degraded_active_hc');
  if (eds === 'degraded') out.push('degraded_eds_health');
  if (f & PENDING_ACTIVE_HC) out.push('pending_active_hc');
  if (f & ACTIVE_HC_TIMEOUT) out.push('active_hc_timeout');
  return out;
}
