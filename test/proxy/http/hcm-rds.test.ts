// The HCM's route source: an inline route_config is a fixed source; `rds` asks ParseContext.rds for
// the worker's live source (a config error without the hook); freezing the config never freezes
// the live source.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJson } from '../../../src/config/decode.ts';
import { deepFreeze, formatErrors } from '../../../src/config/result.ts';
import type { HttpConnectionManager__Output } from '../../../src/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.ts';
import type { RouteConfiguration__Output } from '../../../src/generated/envoy/config/route/v3/RouteConfiguration.ts';
import { registerBuiltins } from '../../../src/filters/index.ts';
import { registry, type RdsReference } from '../../../src/filters/registry.ts';
import { HCM_TYPE, parseHttpConnectionManager } from '../../../src/filters/network/http_connection_manager/index.ts';
import { compileRouteTable } from '../../../src/proxy/http/route-table.ts';
import { LiveRouteSource } from '../../../src/proxy/http/route-source.ts';

registerBuiltins(registry);
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

function hcm(json: Record<string, unknown>): HttpConnectionManager__Output {
  const d = decodeJson<HttpConnectionManager__Output>(HCM_TYPE, { stat_prefix: 'p', http_filters: [ROUTER], ...json });
  if (!d.ok) throw new Error(formatErrors(d.errors));
  return d.value;
}

test('rds: the HCM serves the live source the hook returns; freezing the config leaves it live', () => {
  const refs: RdsReference[] = [];
  const live = new LiveRouteSource('r1');
  const r = parseHttpConnectionManager(hcm({ rds: { route_config_name: 'r1', config_source: { ads: {} } } }), { path: 'hcm', clusterNames: undefined, rds: (ref) => (refs.push(ref), live) });
  assert.ok(r.ok);
  assert.equal(refs.length, 1);
  assert.equal(refs[0]!.routeConfigName, 'r1');
  assert.equal(refs[0]!.path, 'hcm.rds');
  assert.ok(refs[0]!.configSource.ads);
  const cfg = deepFreeze(r.value);
  assert.equal(cfg.routes, live);
  assert.equal(cfg.routes.table, undefined);
  const d = decodeJson<RouteConfiguration__Output>('envoy.config.route.v3.RouteConfiguration', { name: 'r1', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }] }] });
  assert.ok(d.ok);
  const t = compileRouteTable(d.value, { path: 'r1', clusterNames: undefined, dynamic: true });
  assert.ok(t.ok);
  live.set(t.value);
  assert.equal(cfg.routes.table, t.value);
});

test('rds: errors name their field', () => {
  const hook = (): LiveRouteSource => new LiveRouteSource('x');
  const errs = (json: Record<string, unknown>, withHook = true): string => {
    const r = parseHttpConnectionManager(hcm(json), { path: 'hcm', clusterNames: undefined, ...(withHook ? { rds: hook } : {}) });
    return r.ok ? '' : formatErrors(r.errors);
  };
  assert.match(errs({ rds: { route_config_name: 'r', config_source: { ads: {} } } }, false), /^hcm\.rds: rds is not supported yet in this context/);
  assert.equal(errs({ rds: { route_config_name: 'r', config_source: { ads: {} } } }), '');
});

test('route_config: a fixed source named after the RouteConfiguration', () => {
  const r = parseHttpConnectionManager(hcm({ route_config: { name: 'local', virtual_hosts: [] } }), { path: 'hcm', clusterNames: undefined });
  assert.ok(r.ok);
  assert.equal(r.value.routes.name, 'local');
  assert.ok(r.value.routes.table);
});
