// Test helper: a real envoy.service.auth.v3.Authorization gRPC server (grpc-js), its service
// definition loaded from Envoy's own protos with @grpc/proto-loader, answering each Check as told
// and recording the CheckRequests it saw.

import * as grpc from '@grpc/grpc-js';
import { loadEnvoyProtos } from './envoy-protos.ts';

export interface CheckRequest {
  attributes: {
    source: { address: { socket_address: { address: string; port_value: number } } };
    destination: { address: { socket_address: { address: string; port_value: number } } };
    request: { http: { method: string; path: string; host: string; protocol: string; headers: Record<string, string>; body: string; size: string } };
    context_extensions: Record<string, string>;
  };
}
export type Answer = (req: CheckRequest) => Record<string, unknown> | 'hang';

export async function authzServer(answer: Answer): Promise<{ port: number; seen: CheckRequest[]; close(): void }> {
  const pkg = loadEnvoyProtos('envoy/service/auth/v3/external_auth.proto') as unknown as { envoy: { service: { auth: { v3: { Authorization: { service: grpc.ServiceDefinition } } } } } };
  const seen: CheckRequest[] = [];
  const server = new grpc.Server();
  server.addService(pkg.envoy.service.auth.v3.Authorization.service, {
    Check: (call: grpc.ServerUnaryCall<CheckRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      seen.push(call.request);
      const a = answer(call.request);
      if (a !== 'hang') cb(null, a);
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, seen, close: () => server.forceShutdown() };
}

