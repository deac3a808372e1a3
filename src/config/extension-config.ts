// Resolves one extension reference (`{name, typed_config}` as in filters, listener filters and
// access loggers) against the registry and parses its config. Unknown and not optional -> error.

import { decodeJson, extensionTypeUrl, unpackAny } from './decode.ts';
import { fail, ok, joinPath, type Result } from './result.ts';
import { registry, type ExtensionCategory, type ExtensionSpec, type ParseContext } from '../filters/registry.ts';
import { logger } from '../proxy/log.ts';

const log = logger('config');

export interface ExtensionRef {
  readonly name: string;
  readonly typed_config?: { type_url: string; value: Buffer | Uint8Array } | null;
  readonly is_optional?: boolean;
}

/** A resolved extension: its spec and parsed config, or `skipped` for an unknown optional one. */
export type ResolvedExtension = { readonly spec: ExtensionSpec; readonly config: unknown; readonly name: string } | { readonly skipped: true; readonly name: string };

const kindName: Record<ExtensionCategory, string> = {
  listener: 'listener filter',
  network: 'network filter',
  http: 'HTTP filter',
  access_logger: 'access logger',
  transport_socket: 'transport socket',
  upstream_network: 'upstream network filter',
};

export function resolveExtension(category: ExtensionCategory, ref: ExtensionRef, ctx: ParseContext): Result<ResolvedExtension> {
  // TypedStruct configs name their real type inside: look the extension up by that.
  const typeUrl = ref.typed_config?.type_url ? extensionTypeUrl(ref.typed_config) : undefined;
  const spec = registry.find(category, typeUrl, ref.name);
  if (!spec) {
    const what = typeUrl ? `${ref.name} (${typeUrl})` : ref.name;
    if (ref.is_optional) {
      log.warn(`${ctx.path}: skipping unsupported optional ${kindName[category]} ${what}`);
      return ok({ skipped: true, name: ref.name });
    }
    return fail(ctx.path, `unknown ${kindName[category]} "${what}": legate does not implement this extension`);
  }
  let message: unknown;
  if (ref.typed_config && ref.typed_config.type_url) {
    const any = unpackAny(ref.typed_config, joinPath(ctx.path, 'typed_config'));
    if (!any.ok) return any;
    message = any.value.message;
  } else {
    // Deprecated form: only a name (e.g. `envoy.filters.http.router`): the config's defaults.
    const d = decodeJson(spec.protoType, {}, { path: ctx.path });
    if (!d.ok) return d;
    message = d.value;
  }
  const parsed = spec.parse(message, { ...ctx, path: ref.typed_config ? joinPath(ctx.path, 'typed_config') : ctx.path });
  if (!parsed.ok) return parsed;
  return ok({ spec, config: parsed.value, name: ref.name });
}
