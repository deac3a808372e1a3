// dynamic_resources checks at config time: what legate subscribes to (ADS SotW/delta, per-type
// gRPC, files) and the forms it rejects, each error naming its field path.

import test from 'node:test';
import assert from 'node:assert/strict';
import { loadBootstrap } from '../../../src/config/bootstrap.ts';
import { buildStaticConfig } from '../../../src/config/static-config.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { registerBuiltins } from '../../../src/filters/index.ts';
import { registry } from '../../../src/filters/registry.ts';

registerBuiltins(registry);

const XDS_CLUSTER = {
  name: 'xds',
  type: 'STATIC',
  connect_timeout: '1s',
  load_assignment: { cluster_name: 'xds', endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: '/tmp/xds.sock' } } } }] }] },
};
const GRPC = (apiType: string, cluster = 'xds'): object => ({ api_type: apiType, transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: cluster } }] });

function build(dynamic: object) {
  const b = loadBootstrap({ configYaml: JSON.stringify({ dynamic_resources: dynamic, static_resources: { clusters: [XDS_CLUSTER] } }) });
  if (!b.ok) throw new Error(formatErrors(b.errors));
  return buildStaticConfig(b.value);
}

test('ADS over a pipe, delta: lds/cds ride the ADS stream with initial_fetch_timeout 0s = forever', () => {
  const r = build({ ads_config: { ...GRPC('DELTA_GRPC'), set_node_on_first_message_only: true }, lds_config: { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' }, cds_config: { ads: {}, resource_api_version: 'V3' } });
  assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
  const d = r.value.dynamic!;
  assert.equal(d.ads?.apiType, 'DELTA_GRPC');
  assert.equal(d.ads?.target.target, 'unix:/tmp/xds.sock');
  assert.equal(d.ads?.setNodeOnFirstMessageOnly, true);
  assert.equal(d.lds?.source.kind, 'ads');
  assert.equal(d.lds?.initialFetchTimeoutMs, 0);
  assert.equal(d.cds?.initialFetchTimeoutMs, 15_000);
});

test('per-type api_config_source and path_config_source with watched_directory', () => {
  const r = build({ lds_config: { path_config_source: { path: '/etc/lds.yaml', watched_directory: { path: '/etc' } } }, cds_config: { api_config_source: GRPC('GRPC') } });
  assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
  assert.deepEqual(r.value.dynamic!.lds?.source, { kind: 'file', path: '/etc/lds.yaml', watchedDirectory: '/etc' });
  assert.equal(r.value.dynamic!.cds?.source.kind, 'grpc');
});

test('unsupported forms are errors with field paths', () => {
  const cases: Array<[object, string, RegExp]> = [
    [{ lds_config: { ads: {} } }, 'dynamic_resources.lds_config.ads', /ads_config/],
    [{ ads_config: GRPC('REST') }, 'dynamic_resources.ads_config.api_type', /REST/],
    [{ cds_config: { api_config_source: GRPC('REST') } }, 'dynamic_resources.cds_config.api_config_source.api_type', /REST/],
    [{ lds_resources_locator: 'xdstp://x/envoy.config.listener.v3.Listener/*' }, 'dynamic_resources.lds_resources_locator', /xdstp/],
    [{ cds_config: { self: {} } }, 'dynamic_resources.cds_config.self', /self/],
    [{ ads_config: GRPC('GRPC', 'nope') }, 'dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name', /unknown gRPC client cluster 'nope'/],
  ];
  for (const [dyn, path, reason] of cases) {
    const r = build(dyn);
    assert.equal(r.ok, false, JSON.stringify(dyn));
    if (r.ok) continue;
    const e = r.errors.find((x) => x.path === path);
    assert.ok(e, `${JSON.stringify(dyn)}: ${formatErrors(r.errors)}`);
    assert.match(e.reason, reason);
  }
});
