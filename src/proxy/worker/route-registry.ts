// A worker's RDS route configurations by name: each is a live RouteSource the HCMs with `rds` of
// that name hold; a RouteConfiguration pushed by the main thread compiles and swaps its table (the
// next request uses it), a removal clears it (those HCMs answer 404 NR until a table comes back).

import type { RouteConfiguration__Output } from '../../generated/envoy/config/route/v3/RouteConfiguration.ts';
import type { RdsReference } from '../../filters/registry.ts';
import { ok, type Result } from '../../config/result.ts';
import { compileRouteTable } from '../http/route-table.ts';
import { LiveRouteSource } from '../http/route-source.ts';

export class RouteRegistry {
  readonly #sources = new Map<string, LiveRouteSource>();

  /** The live source for a route configuration name, created empty on first reference. */
  source(name: string): LiveRouteSource {
    let s = this.#sources.get(name);
    if (!s) this.#sources.set(name, (s = new LiveRouteSource(name)));
    return s;
  }

  /** ParseContext.rds for HCMs parsed on this worker. */
  readonly rdsHook = (ref: RdsReference): LiveRouteSource => this.source(ref.routeConfigName);

  /**
   * Compiles a RouteConfiguration (validate_clusters defaults to false, as for RDS in Envoy) and
   * swaps it in; a bad one changes nothing.
   */
  apply(rc: RouteConfiguration__Output): Result<void> {
    const r = compileRouteTable(rc, { path: `RouteConfiguration ${rc.name}`, clusterNames: undefined, dynamic: true });
    if (!r.ok) return r;
    this.source(rc.name).set(r.value);
    return r.warnings ? { ok: true, value: undefined, warnings: r.warnings } : ok(undefined);
  }

  /** RDS removed the configuration: HCMs referring to it have no table (404 NR). */
  remove(name: string): void {
    this.#sources.get(name)?.set(undefined);
  }

  /** Route configuration names with a table (tests). */
  names(): string[] {
    return [...this.#sources.values()].filter((s) => s.table !== undefined).map((s) => s.name);
  }
}
