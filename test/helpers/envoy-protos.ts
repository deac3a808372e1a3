// Test helper: a gRPC package definition loaded from Envoy's own .proto files (the ones
// @grpc/grpc-js-xds ships) with @grpc/proto-loader, for the real services tests run
// (authorization, rate limit).

import { createRequire } from 'node:module';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** `file` relative to Envoy's API root, e.g. `envoy/service/auth/v3/external_auth.proto`. */
export function loadEnvoyProtos(file: string): grpc.GrpcObject {
  const def = protoLoader.loadSync(file, {
    includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d)),
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(def);
}
