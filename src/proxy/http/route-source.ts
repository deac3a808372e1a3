// Where an HCM gets its route table: a fixed source for an inline `route_config`, or a worker's
// live RDS entry whose table is swapped when the main thread pushes a new RouteConfiguration.
// Both keep their state in private fields, so deepFreeze of an HcmConfig never freezes them.

import type { RouteSource } from '../../filters/registry.ts';
import type { RouteTable } from './route-types.ts';

/** An inline route_config: the same table for the HCM's whole life. */
export class FixedRouteSource implements RouteSource {
  readonly #name: string;
  readonly #table: RouteTable;

  constructor(name: string, table: RouteTable) {
    this.#name = name;
    this.#table = table;
  }

  get name(): string {
    return this.#name;
  }

  get table(): RouteTable {
    return this.#table;
  }
}

/** An RDS route configuration on one worker: undefined until the first table arrives (requests get 404 NR). */
export class LiveRouteSource implements RouteSource {
  readonly #name: string;
  #table: RouteTable | undefined;

  constructor(name: string) {
    this.#name = name;
  }

  get name(): string {
    return this.#name;
  }

  get table(): RouteTable | undefined {
    return this.#table;
  }

  /** The next request matches against `table`; streams already routed keep their route. */
  set(table: RouteTable | undefined): void {
    this.#table = table;
  }
}
