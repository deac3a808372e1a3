// Smoke: a real legate process whose bootstrap has only the xDS cluster and ADS (SotW) serves a
// listener + route + EDS cluster + endpoints from the test control plane: traffic flows, /ready
// is 200 only after the initial fetch, /listeners shows the dynamic listener, /config_dump its
// dynamic state. (The full scenario matrix lives in test/e2e/xds*.test.ts.)

import test from 'node:test';
import assert from 'node:assert/strict';
import { startLegate } from '../../helpers/legate.ts';
import { ControlPlane } from '../../helpers/xds/control-plane.ts';
import { adsBootstrap, cla, edsCluster, freePort, namedUpstream, rdsListener, routeConfig } from '../../helpers/xds/e2e.ts';

test('ADS SotW: a process started from the control plane serves listener, route, cluster and endpoints', async () => {
  const cp = await ControlPlane.start();
  const up = await namedUpstream('a');
  const port = await freePort();
  const legate = await startLegate(adsBootstrap(cp, 'sotw'));
  try {
    const ready0 = await fetch(`${legate.admin}/ready`);
    assert.equal(ready0.status, 503, 'not LIVE before the initial fetch');
    await ready0.text();
    cp.snapshot.setJson('envoy.config.cluster.v3.Cluster', 'backend', edsCluster('backend'));
    cp.snapshot.setJson('envoy.config.endpoint.v3.ClusterLoadAssignment', 'backend', cla('backend', [up.port]));
    cp.snapshot.setJson('envoy.config.listener.v3.Listener', 'http', rdsListener('http', port, 'local_route'));
    cp.snapshot.setJson('envoy.config.route.v3.RouteConfiguration', 'local_route', routeConfig('local_route', 'backend'));
    for (let i = 0; ; i++) {
      const r = await fetch(`${legate.admin}/ready`);
      await r.text();
      if (r.status === 200) break;
      if (i > 300) assert.fail('never became LIVE');
      await new Promise((res) => setTimeout(res, 50));
    }
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'a');
    const listeners = (await (await fetch(`${legate.admin}/listeners?format=json`)).json()) as { listener_statuses: Array<{ name: string }> };
    assert.ok(listeners.listener_statuses.some((l) => l.name === 'http'));
    const dump = (await (await fetch(`${legate.admin}/config_dump?resource=dynamic_listeners`)).json()) as { configs: Array<{ name: string; active_state?: unknown }> };
    assert.equal(dump.configs[0]?.name, 'http');
    assert.ok(dump.configs[0]?.active_state);
    const stats = await (await fetch(`${legate.admin}/stats`)).text();
    assert.match(stats, /^cluster_manager\.cds\.update_success: [1-9]/m);
    assert.match(stats, /^listener_manager\.lds\.update_success: [1-9]/m);
    assert.match(stats, /^http\.ingress_http\.rds\.local_route\.update_success: [1-9]/m);
    assert.match(stats, /^control_plane\.connected_state: 1$/m);
  } finally {
    await legate.stop();
    await up.close();
    await cp.close();
  }
});
