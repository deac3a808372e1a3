// Envoy's xDS subscription statistics under one prefix (`sds.<name>.`, later
// `listener_manager.lds.`, `cluster_manager.cds.`...), as every subscription kind bumps them:
// update_attempt once at start and once per outcome; update_success / update_rejected /
// update_failure / init_fetch_timeout per outcome; update_time, version and update_duration on
// success. `version_text` is a TextReadout in Envoy; legate has no text readouts, so the text is
// kept here (for /config_dump and tests) and the `version` gauge carries its hash.

import { createHash } from 'node:crypto';
import type { StatsStore } from '../proxy/stats.ts';

export type UpdateOutcome = 'success' | 'rejected' | 'failure' | 'init_fetch_timeout';

export class SubscriptionStats {
  readonly prefix: string;
  readonly #stats: StatsStore;
  #versionText = '';

  constructor(stats: StatsStore, prefix: string) {
    this.#stats = stats;
    this.prefix = prefix;
    // Created up front so `/stats` lists them at 0, as Envoy does.
    for (const c of ['update_attempt', 'update_success', 'update_rejected', 'update_failure', 'init_fetch_timeout']) stats.counter(prefix + c);
  }

  /** The subscription started (Envoy counts the start as an attempt). */
  started(): void {
    this.#stats.counter(this.prefix + 'update_attempt').inc();
  }

  outcome(o: UpdateOutcome, version?: string, durationMs?: number): void {
    const s = this.#stats;
    s.counter(this.prefix + 'update_attempt').inc();
    if (o === 'init_fetch_timeout') return s.counter(this.prefix + 'init_fetch_timeout').inc();
    s.counter(this.prefix + `update_${o}`).inc();
    if (o !== 'success') return;
    s.gauge(this.prefix + 'update_time', 'max').set(Date.now());
    if (version !== undefined) {
      this.#versionText = version;
      s.gauge(this.prefix + 'version', 'max').set(versionHash(version));
    }
    if (durationMs !== undefined) s.histogram(this.prefix + 'update_duration').record(durationMs);
  }

  /** The last accepted version_info (Envoy's `version_text`). */
  get versionText(): string {
    return this.#versionText;
  }
}

/** A stable 48-bit number for a version string (Envoy uses xxHash64; a gauge here is a double). */
function versionHash(v: string): number {
  return createHash('sha256').update(v).digest().readUIntBE(0, 6);
}

/** A stat prefix for log lines: `sds.default.` -> `sds.default`. */
export function label(prefix: string): string {
  return prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
}
