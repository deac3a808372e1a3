// SDS over ADS (`sds_config: { ads: {} }`): secrets ride the ADS stream's one Secret subscription
// (names = the union of the secrets subscribed), each validated per name; a bad one is NACKed on
// the ADS stream; stats per name under `sds.<name>.`. SotW and delta.

import test from 'node:test';
import assert from 'node:assert/strict';
import { loadBootstrap } from '../../../src/config/bootstrap.ts';
import { buildStaticConfig } from '../../../src/config/static-config.ts';
import { formatErrors } from '../../../src/config/result.ts';
import { StatsStore } from '../../../src/proxy/stats.ts';
import { XdsManager } from '../../../src/proxy/xds/xds-manager.ts';
import { SdsClient } from '../../../src/xds-client/sds-client.ts';
import { validateSdsSecret } from '../../../src/proxy/tls/secret-manager-main.ts';
import type { TlsSecret } from '../../../src/proxy/tls/types.ts';
import { TYPE_URL } from '../../../src/xds-client/codec.ts';
import { ControlPlane, certificateSecret } from '../../helpers/xds/control-plane.ts';
import { adsBootstrap } from '../../helpers/xds/e2e.ts';
import { testPki } from '../../helpers/certs.ts';
import { configSource, until } from '../../xds-client/helpers.ts';

const pki = testPki();

for (const mode of ['sotw', 'delta'] as const) {
  test(`${mode}: SDS over ADS shares the ADS stream; a bad secret is NACKed there`, async () => {
    const cp = await ControlPlane.start();
    const b = loadBootstrap({ configYaml: JSON.stringify(adsBootstrap(cp, mode)) });
    if (!b.ok) throw new Error(formatErrors(b.errors));
    const config = buildStaticConfig(b.value);
    if (!config.ok) throw new Error(formatErrors(config.errors));
    const stats = new StatsStore();
    const manager = new XdsManager({ config: config.value, plan: config.value.dynamic!, stats, push: async () => undefined, drainTimeMs: 100, workers: 1 });
    const received: Array<{ name: string; version: string }> = [];
    const sds = new SdsClient<TlsSecret>({ clusters: config.value.clusters, node: null, stats, validate: validateSdsSecret, onSecret: (name, _s, version) => void received.push({ name, version }), ads: manager.adsSecrets });
    try {
      cp.setSecret('default', certificateSecret('default', pki.server), 'v1');
      cp.setSecret('other', certificateSecret('other', pki.ecdsaServer), 'v1');
      const ads = configSource({ ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' });
      assert.ok(sds.subscribe('default', ads, 'x').ok);
      assert.ok(sds.subscribe('other', ads, 'y').ok);
      const outcomes = await sds.initialized();
      assert.deepEqual([...outcomes.values()], ['success', 'success']);
      assert.deepEqual(new Set(received.map((r) => r.name)), new Set(['default', 'other']));
      const reqs = cp.requestsFor(TYPE_URL.secret);
      assert.ok(reqs.every((r) => r.method.endsWith('AggregatedResources')), 'secrets ride the ADS stream');
      const names = new Set(reqs.flatMap((r) => ('resource_names' in r.request ? r.request.resource_names : r.request.resource_names_subscribe)));
      assert.deepEqual(names, new Set(['default', 'other']));
      assert.ok((stats.snapshot().counters['sds.default.update_success'] ?? 0) >= 1);
      const before = received.length;
      // A key that does not match the certificate: NACK on the ADS stream, the old secret stays.
      cp.setSecret('default', certificateSecret('default', { certPem: pki.server.certPem, keyPem: pki.client.keyPem }), 'v2');
      const nack = await cp.waitFor(() => cp.requestsFor(TYPE_URL.secret).find((r) => r.request.error_detail), 'an SDS NACK');
      assert.match(nack.request.error_detail!.message, /default/);
      await until(() => stats.snapshot().counters['sds.default.update_rejected'] === 1, 'update_rejected');
      assert.equal(received.length, before, 'nothing of a rejected secret is applied');
    } finally {
      sds.close();
      manager.close();
      await cp.close();
    }
  });
}
