// A filter's route-level override (a typed_per_filter_config message, unpacked by the route table)
// parsed once per message object and shared by every stream of every route that carries it. One
// that fails to parse is logged once and ignored (null): the route table has either rejected it
// already or the filter's parser is stricter than the table's check.

import { formatErrors, type Result } from '../../config/result.ts';
import type { RouteEntry } from '../../proxy/http/route-types.ts';
import { logger } from '../../proxy/log.ts';

const log = logger('filter');

export class PerRouteConfigs<C> {
  readonly #parsed = new WeakMap<object, C | null>();
  readonly #key: string;
  /** What a message is, for the log line (e.g. `HeaderMutationPerRoute`). */
  readonly #what: string;
  readonly #parse: (message: object, path: string) => Result<C>;

  constructor(key: string, what: string, parse: (message: object, path: string) => Result<C>) {
    this.#key = key;
    this.#what = what;
    this.#parse = parse;
  }

  /** The parsed config of `message`, a level of `route`'s; null when it is invalid. */
  get(message: object, route: RouteEntry): C | null {
    let c = this.#parsed.get(message);
    if (c === undefined) {
      const r = this.#parse(message, `typed_per_filter_config["${this.#key}"]`);
      if (!r.ok) log.warn(`route ${route.virtualHost.name}/${route.name}: ignoring invalid ${this.#what}: ${formatErrors(r.errors)}`);
      c = r.ok ? r.value : null;
      this.#parsed.set(message, c);
    }
    return c;
  }
}
