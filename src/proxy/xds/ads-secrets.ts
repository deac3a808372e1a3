// SDS over ADS (`sds_config: { ads: {} }`): every secret name shares the ADS stream's one Secret
// subscription, whose resource names are the union of the names subscribed. Each response is
// split per name and checked by that name's handler (the SDS client's validation); any error
// rejects the whole response (NACK, nothing applied), else every name applies its secret. Stats
// stay per name under `sds.<name>.`, as with a per-secret stream.

import type { Secret__Output } from '../../generated/envoy/extensions/transport_sockets/tls/v3/Secret.ts';
import type { ConfigError } from '../../config/result.ts';
import type { StatsStore } from '../stats.ts';
import { logger } from '../log.ts';
import type { AdsSecretHandler, AdsSecretSource } from '../../xds-client/sds-client.ts';
import { SECRET_DECODER } from '../../xds-client/sds-client.ts';
import { SubscriptionStats } from '../../xds-client/subscription-stats.ts';
import { InitialFetch, type Subscription, type UpdateHandler } from '../../xds-client/subscription.ts';
import type { SourceSpec } from './sources.ts';
import type { XdsStreams, XdsSubscription } from './xds-streams.ts';

const log = logger('secret');

interface Entry {
  readonly handler: AdsSecretHandler;
  readonly stats: SubscriptionStats;
  version: string;
  readonly init: InitialFetch;
}

export class AdsSecrets implements AdsSecretSource {
  readonly #streams: XdsStreams;
  readonly #stats: StatsStore;
  readonly #entries = new Map<string, Entry>();
  #sub: XdsSubscription | undefined;

  constructor(streams: XdsStreams, stats: StatsStore) {
    this.#streams = streams;
    this.#stats = stats;
  }

  subscribe(name: string, handler: AdsSecretHandler, statPrefix: string, initialFetchTimeoutMs: number): Subscription {
    const stats = new SubscriptionStats(this.#stats, statPrefix);
    const init = new InitialFetch(initialFetchTimeoutMs, () => {
      log.warn(`sds.${name}: initial fetch over ADS timed out after ${initialFetchTimeoutMs} ms`);
      stats.outcome('init_fetch_timeout');
    });
    const e: Entry = { handler, stats, version: '', init };
    this.#entries.set(name, e);
    stats.started();
    const names = [...this.#entries.keys()];
    if (this.#sub) this.#sub.setNames(names);
    else {
      const spec: SourceSpec = { source: { kind: 'ads' }, initialFetchTimeoutMs: 0, key: 'ads' };
      this.#sub = this.#streams.subscribe({ type: 'secret', spec, decoder: SECRET_DECODER, names, statPrefix: undefined, onUpdate: (u) => this.#onUpdate(u) });
    }
    return {
      initialized: init.promise,
      get version() {
        return e.version;
      },
      close: () => {
        init.cancel();
        this.#entries.delete(name);
        this.#sub?.setNames([...this.#entries.keys()]);
      },
    };
  }

  #onUpdate(u: Parameters<UpdateHandler<Secret__Output>>[0]): ConfigError[] {
    const errors: ConfigError[] = [];
    const good: Array<{ e: Entry; version: string; apply: (version: string) => void }> = [];
    const bad: Entry[] = [];
    for (const r of u.resources) {
      const e = this.#entries.get(r.name);
      if (!e) continue;
      const c = e.handler.check(r);
      if (c.ok) good.push({ e, version: r.version || u.version, apply: c.apply });
      else {
        errors.push(...c.errors);
        bad.push(e);
      }
    }
    if (errors.length > 0) {
      for (const e of [...bad, ...good.map((g) => g.e)]) {
        e.stats.outcome('rejected');
        e.init.done('rejected');
      }
      return errors;
    }
    for (const { e, version, apply } of good) {
      apply(version);
      e.version = version;
      e.stats.outcome('success', version);
      e.init.done('success');
    }
    return [];
  }
}
