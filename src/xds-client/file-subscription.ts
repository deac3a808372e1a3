// A filesystem subscription (`path_config_source`, Envoy's FilesystemSubscriptionImpl): the file
// holds a DiscoveryResponse in YAML or JSON; it is read at start and again whenever the watched
// directory changes (`watched_directory`, e.g. Kubernetes swapping its `..data` symlink) or, with
// no watched directory, whenever the file itself is replaced or written. A file that cannot be
// read or parsed bumps update_failure; resources that fail validation bump update_rejected; in
// both cases the previous resources stay in use.

import fs from 'node:fs';
import path from 'node:path';
import type { DiscoveryResponse__Output } from '../generated/envoy/service/discovery/v3/DiscoveryResponse.ts';
import { decodeJson } from '../config/decode.ts';
import { parseYaml } from '../config/bootstrap.ts';
import { formatErrors, type ConfigError } from '../config/result.ts';
import type { StatsStore } from '../proxy/stats.ts';
import { logger } from '../proxy/log.ts';
import { decodeResource, nackMessage, sortDecoded, type InvalidHandler, type DecodedResource, type InitOutcome, type ResourceDecoder, type Subscription, type UpdateHandler } from './subscription.ts';
import { SubscriptionStats, label } from './subscription-stats.ts';

const log = logger('config');
const SETTLE_MS = 20; // several fs events arrive per swap: read once they settle

export interface FileSubscriptionOptions<T> {
  readonly path: string;
  /** `watched_directory.path`; undefined = watch the file itself. */
  readonly watchedDirectory: string | undefined;
  readonly decoder: ResourceDecoder<T>;
  /** Names the subscriber wants; undefined = all resources in the file. */
  readonly names: readonly string[] | undefined;
  readonly onUpdate: UpdateHandler<T>;
  /** Told about resources of a rejected file that decoded but failed validation. */
  readonly onInvalid?: InvalidHandler<T>;
  readonly stats: StatsStore;
  readonly statPrefix: string;
}

export class FileSubscription<T> implements Subscription {
  readonly initialized: Promise<InitOutcome>;
  readonly #o: FileSubscriptionOptions<T>;
  readonly #stats: SubscriptionStats;
  #resolveInit!: (o: InitOutcome) => void;
  #version = '';
  #lastText: string | undefined;
  #watcher: fs.FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: FileSubscriptionOptions<T>) {
    this.#o = o;
    this.#stats = new SubscriptionStats(o.stats, o.statPrefix);
    this.initialized = new Promise((r) => (this.#resolveInit = r));
    this.#stats.started();
    this.#watch();
    this.refresh();
  }

  get version(): string {
    return this.#version;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
  }

  #watch(): void {
    const dir = this.#o.watchedDirectory ?? path.dirname(this.#o.path);
    const base = path.basename(this.#o.path);
    try {
      this.#watcher = fs.watch(dir, { persistent: false }, (_event, file) => {
        // Without a watched directory, only events about the file itself count.
        if (this.#o.watchedDirectory === undefined && file !== null && file !== base) return;
        clearTimeout(this.#timer);
        this.#timer = setTimeout(() => this.refresh(), SETTLE_MS);
        this.#timer.unref();
      });
      this.#watcher.on('error', (e) => log.warn(`${label(this.#o.statPrefix)}: watching ${dir} failed: ${e.message}`));
    } catch (e) {
      log.warn(`${label(this.#o.statPrefix)}: cannot watch ${dir}: ${(e as Error).message}; ${this.#o.path} will not be reloaded`);
    }
  }

  /** Reads the file and applies it (an unchanged file is not applied again). */
  refresh(): void {
    if (this.#closed) return;
    let text: string;
    try {
      text = fs.readFileSync(this.#o.path, 'utf8');
    } catch (e) {
      return this.#failed([{ path: this.#o.path, reason: `unable to read file: ${(e as Error).message}` }]);
    }
    if (text === this.#lastText) return;
    this.#lastText = text;
    const json = parseYaml(text, this.#o.path);
    if (!json.ok) return this.#failed(json.errors);
    const msg = decodeJson<DiscoveryResponse__Output>('envoy.service.discovery.v3.DiscoveryResponse', json.value);
    if (!msg.ok) return this.#failed(msg.errors);
    const started = performance.now();
    const errors: ConfigError[] = [];
    const decoded: DecodedResource<T>[] = [];
    const invalid: DecodedResource<T>[] = [];
    msg.value.resources.forEach((any, i) => sortDecoded(decodeResource(this.#o.decoder, any, `resources[${i}]`), decoded, invalid, errors));
    if (invalid.length > 0) this.#o.onInvalid?.(invalid);
    const wanted = this.#o.names ? new Set(this.#o.names) : undefined;
    const mine = wanted ? decoded.filter((d) => wanted.has(d.name)) : decoded;
    if (errors.length === 0 && wanted && mine.length === 0) {
      errors.push({ path: 'resources', reason: `missing resources ${[...wanted].map((n) => `'${n}'`).join(', ')} in ${this.#o.path}` });
    }
    if (errors.length === 0) errors.push(...this.#o.onUpdate({ resources: mine, removed: [], version: msg.value.version_info }));
    if (errors.length > 0) {
      log.warn(`${label(this.#o.statPrefix)}: filesystem config update rejected (${this.#o.path}): ${nackMessage(errors)}`);
      this.#stats.outcome('rejected');
      return this.#resolveInit('rejected');
    }
    this.#version = msg.value.version_info;
    this.#stats.outcome('success', this.#version, performance.now() - started);
    log.debug(`${label(this.#o.statPrefix)}: filesystem config update accepted (${this.#o.path}, version ${this.#version})`);
    this.#resolveInit('success');
  }

  #failed(errors: readonly ConfigError[]): void {
    log.warn(`${label(this.#o.statPrefix)}: filesystem config update failure: ${formatErrors(errors)}`);
    this.#stats.outcome('failure');
    this.#resolveInit('failure');
  }
}
