// Records Istio's standard metrics into a worker's StatsStore as tagged stats under the
// `istiocustom` namespace (Prometheus: `istio_requests_total{reporter="destination",...}`), shared by
// the HTTP and network filters: one per filter config, per worker. A stream's tags are joined once;
// without overrides, the stats for a tag set are found by that one key (metrics of a stream share
// their tags), so the per-request cost is one lookup, not one name per metric.

import type { RuntimeContext } from '../../registry.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import type { Counter, Histogram } from '../../../proxy/stats.ts';
import type { JsonStruct } from '../../common/istio/struct-codec.ts';
import { localNode } from '../../../proxy/local-info.ts';
import type { IstioStatsConfig } from './config.ts';
import { localWorkload, overrideTags, STAT_NAMESPACE, type LocalWorkload, type Tags } from './tags.ts';

/** Distinct tag sets whose stats are remembered (the stats themselves stay; only the shortcut is dropped). */
const MAX_TAG_SETS = 10_000;

type Stat = Counter | Histogram | null;

/** One stream's (or connection's) tags, with the shortcut to their stats once looked up. */
export class TagSet {
  readonly tags: Tags;
  /** `.k1.v1.k2.v2...`: the key of these tags' stats; undefined when overrides make them per metric. */
  readonly key: string | undefined;
  stats: Map<string, Stat> | undefined;

  constructor(tags: Tags, key: string | undefined) {
    this.tags = tags;
    this.key = key;
  }
}

export class IstioStatsRecorder {
  readonly config: IstioStatsConfig;
  readonly rt: RuntimeContext;
  readonly local: LocalWorkload;
  readonly #sets = new Map<string, Map<string, Stat>>();

  constructor(config: IstioStatsConfig, rt: RuntimeContext) {
    this.config = config;
    this.rt = rt;
    this.local = localWorkload(localNode()?.metadata as JsonStruct | undefined);
    // Istio's istio_build gauge: which proxy version reports (one per process, whatever the workers).
    const build = rt.stats.taggedName(`${STAT_NAMESPACE}.istio_build`, [
      ['component', 'proxy'],
      ['tag', this.local.istioVersion || 'unknown'],
    ]);
    rt.stats.gauge(build, 'max').set(1);
  }

  tagSet(tags: Tags): TagSet {
    if (this.config.overrides.size > 0) return new TagSet(tags, undefined);
    let key = '';
    for (let i = 0; i < tags.length; i++) key += `.${tags[i]![0]}.${tags[i]![1]}`;
    return new TagSet(tags, key);
  }

  #stat(metric: string, set: TagSet, info: StreamInfo, histogram: boolean): Stat {
    if (set.key === undefined) return this.#make(metric, set.tags, info, histogram);
    if (!set.stats) {
      let m = this.#sets.get(set.key);
      if (!m) {
        if (this.#sets.size >= MAX_TAG_SETS) this.#sets.clear();
        this.#sets.set(set.key, (m = new Map()));
      }
      set.stats = m;
    }
    let s = set.stats.get(metric);
    if (s === undefined) set.stats.set(metric, (s = this.#make(metric, set.tags, info, histogram)));
    return s;
  }

  #make(metric: string, tags: Tags, info: StreamInfo, histogram: boolean): Stat {
    if (this.config.dropped.has(metric)) return null;
    const name = this.rt.stats.taggedName(`${STAT_NAMESPACE}.istio_${metric}`, overrideTags(tags, this.config.overrides.get(metric), info));
    return histogram ? this.rt.stats.histogram(name) : this.rt.stats.counter(name);
  }

  count(metric: string, set: TagSet, info: StreamInfo, by = 1): void {
    (this.#stat(metric, set, info, false) as Counter | null)?.inc(by);
  }

  record(metric: string, set: TagSet, info: StreamInfo, value: number): void {
    (this.#stat(metric, set, info, true) as Histogram | null)?.record(value);
  }
}
