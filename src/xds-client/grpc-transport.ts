// Turns a ConfigSource's gRPC service into a grpc-js channel, and opens discovery streams on it.
// `envoy_grpc.cluster_name` names a bootstrap static cluster whose first endpoint is a `pipe`
// (-> `unix:<path>`, `unix-abstract:` for `@name`) or a socket address; `google_grpc.target_uri`
// is used as is (with `ssl_credentials` when given). Resolution failures are config errors with
// field paths; channels are shared by every subscription with the same target, and a broken
// channel shows up as a stream ending with a non-OK status (the subscription retries).

import { createRequire } from 'node:module';
import type * as Grpc from '@grpc/grpc-js';
import type { GrpcTarget } from '../config/grpc-target.ts';
import type { DiscoveryMethod, MessageCodec } from './codec.ts';

// Config-time resolution lives in config/ so worker threads can check config without loading grpc-js.
export { grpcServiceTarget, resolveGrpcTarget, type GrpcApiType, type GrpcTarget } from '../config/grpc-target.ts';

/** A bidirectional discovery stream, as the subscriptions see it. */
export type DiscoveryStream<Req, Res> = Grpc.ClientDuplexStream<Req, Res>;

let grpcJs: typeof Grpc | undefined;

/** grpc-js, loaded with the first channel (2.6 MB of heap): a process without xDS or SDS never loads it. */
function grpc(): typeof Grpc {
  return (grpcJs ??= createRequire(import.meta.url)('@grpc/grpc-js') as typeof Grpc);
}

/** One shared grpc-js client per distinct target. */
export class GrpcChannelPool {
  readonly #clients = new Map<string, Grpc.Client>();

  #client(t: GrpcTarget): Grpc.Client {
    const key = JSON.stringify([t.target, t.authority, t.tls]);
    let c = this.#clients.get(key);
    if (!c) {
      const creds = t.tls
        ? grpc().credentials.createSsl(
            t.tls.rootCerts ? Buffer.from(t.tls.rootCerts) : null,
            t.tls.privateKey ? Buffer.from(t.tls.privateKey) : null,
            t.tls.certChain ? Buffer.from(t.tls.certChain) : null,
          )
        : grpc().credentials.createInsecure();
      const options: Grpc.ChannelOptions = {
        'grpc.max_receive_message_length': -1, // xDS responses can be large; Envoy does not cap them by default
        'grpc.keepalive_time_ms': 30 * 1000, // 30s, as Istio's bootstrap sets for its xDS clusters
        'grpc.keepalive_timeout_ms': 10 * 1000,
        // Reconnect quickly: the subscription has its own jittered back-off.
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 5 * 1000,
      };
      if (t.authority) options['grpc.default_authority'] = t.authority;
      c = new (grpc().Client)(t.target, creds, options);
      this.#clients.set(key, c);
    }
    return c;
  }

  /** Opens a discovery stream (fails fast: an unreachable server ends it with UNAVAILABLE). */
  open<Req, Res>(t: GrpcTarget, method: DiscoveryMethod, req: MessageCodec<Req, unknown>, res: MessageCodec<unknown, Res>): DiscoveryStream<Req, Res> {
    const md = new (grpc().Metadata)();
    for (const [k, v] of t.metadata) md.add(k, v);
    return this.#client(t).makeBidiStreamRequest<Req, Res>(method.path, req.serialize, res.deserialize, md);
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}
