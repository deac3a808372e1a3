// Records Istio's standard metrics into a worker's StatsStore as tagged stats under the
// `istiocustom` namespace (Prometheus: `istio_requests_total{reporter="destination",…}`), shared by
// the HTTP and network filters: one per filter config, per worker.

import type { RuntimeContext } from '../../registry.ts';
import type { StreamInfo } from '../../../proxy/http/stream-info.ts';
import type { JsonStruct } from '../../common/istio/struct-codec.ts';
import { localNode } from '../../../proxy/local-info.ts';
import type { IstioStatsConfig } from './config.ts';
import { localWorkload, overrideTags, STAT_NAMESPACE, type LocalWorkload, type Tags } from './tags.ts';

export class IstioStatsRecorder {
  readonly config: IstioStatsConfig;
  readonly rt: RuntimeContext;
  readonly local: LocalWorkload;

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

  #name(metric: string, tags: Tags, info: StreamInfo): string | undefined {
    if (this.config.dropped.has(metric)) return undefined;
    return this.rt.stats.taggedName(`${STAT_NAMESPACE}.istio_${metric}`, overrideTags(tags, this.config.overrides.get(metric), info));
  }

  count(metric: string, tags: Tags, info: StreamInfo, by = 1): void {
    const name = this.#name(metric, tags, info);
    if (name !== undefined) this.rt.stats.counter(name).inc(by);
  }

  record(metric: string, tags: Tags, info: StreamInfo, value: number): void {
    const name = this.#name(metric, tags, info);
    if (name !== undefined) this.rt.stats.histogram(name).record(value);
  }
}
