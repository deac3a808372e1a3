// grpc_web config: the GrpcWeb message has no fields.

import { type Result, ok } from '../../../config/result.ts';

export const GRPC_WEB_NAME = 'envoy.filters.http.grpc_web';
export const GRPC_WEB_TYPE = 'envoy.extensions.filters.http.grpc_web.v3.GrpcWeb';

export type GrpcWebConfig = Readonly<Record<string, never>>;

export function parseGrpcWeb(): Result<GrpcWebConfig> {
  return ok(Object.freeze({}));
}
