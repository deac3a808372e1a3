// HCM original_ip_detection_extensions (used when use_remote_address is false): Envoy's xff
// extension (the address xff_num_trusted_hops from the right of x-forwarded-for) and custom_header
// (an IP address in a named header, optionally trusted for the internal-address check, optionally
// rejecting the request when the header has none). The first extension that finds an address
// wins; one that rejects ends the request.

import net from 'node:net';
import { joinPath, ok, type ConfigError, type Result } from '../../config/result.ts';
import { unpackAny } from '../../config/decode.ts';
import { lookupEnumType } from '../../config/protos.ts';
import type { HeaderMap } from './headers.ts';
import type { TypedExtensionConfig__Output } from '../../generated/envoy/config/core/v3/TypedExtensionConfig.ts';
import type { XffConfig__Output } from '../../generated/envoy/extensions/http/original_ip_detection/xff/v3/XffConfig.ts';
import type { CustomHeaderConfig__Output } from '../../generated/envoy/extensions/http/original_ip_detection/custom_header/v3/CustomHeaderConfig.ts';

export interface OriginalIpResult {
  /** The client's address, when this extension found one. */
  readonly address?: string;
  /** May the address make the request internal (Envoy's allow_trusted_address_checks)? */
  readonly trusted: boolean;
  /** Answer with this status instead of serving the request. */
  readonly rejectStatus?: number;
}

export type OriginalIpDetector = (headers: HeaderMap) => OriginalIpResult;

const XFF_TYPE = 'envoy.extensions.http.original_ip_detection.xff.v3.XffConfig';
const CUSTOM_HEADER_TYPE = 'envoy.extensions.http.original_ip_detection.custom_header.v3.CustomHeaderConfig';
const NOT_FOUND: OriginalIpResult = Object.freeze({ trusted: false });

/** Envoy's getLastAddressFromXFF: the address `skip` entries from the right, and whether XFF held one address. */
export function lastAddressFromXff(xff: string | undefined, skip: number): { address: string | undefined; single: boolean } {
  if (!xff) return { address: undefined, single: false };
  const parts = xff.split(',');
  const single = parts.length === 1;
  if (skip >= parts.length) return { address: undefined, single };
  const a = parts[parts.length - 1 - skip]!.trim();
  return { address: net.isIP(a) ? a : undefined, single };
}

function xffDetector(hops: number): OriginalIpDetector {
  return (h) => {
    const r = lastAddressFromXff(h.getJoined('x-forwarded-for'), hops);
    return r.address === undefined ? NOT_FOUND : { address: r.address, trusted: r.single };
  };
}

function customHeaderDetector(name: string, trusted: boolean, rejectStatus: number | undefined): OriginalIpDetector {
  const miss: OriginalIpResult = rejectStatus === undefined ? NOT_FOUND : { trusted: false, rejectStatus };
  return (h) => {
    const v = h.get(name)?.trim();
    return v !== undefined && net.isIP(v) ? { address: v, trusted } : miss;
  };
}

/** Parses the extensions in order; an unknown one is an error (Envoy fails the config too). */
export function parseOriginalIpDetection(exts: readonly TypedExtensionConfig__Output[], path: string): Result<OriginalIpDetector[]> {
  const out: OriginalIpDetector[] = [];
  const errors: ConfigError[] = [];
  exts.forEach((e, i) => {
    const p = joinPath(path, `[${i}].typed_config`);
    if (!e.typed_config) return void errors.push({ path: p, reason: 'value is required' });
    const any = unpackAny<XffConfig__Output & CustomHeaderConfig__Output>(e.typed_config, p);
    if (!any.ok) return void errors.push(...any.errors);
    const m = any.value.message;
    if (any.value.typeName === XFF_TYPE) return void out.push(xffDetector(m.xff_num_trusted_hops ?? 0));
    if (any.value.typeName !== CUSTOM_HEADER_TYPE) return void errors.push({ path: p, reason: `unknown original IP detection extension ${any.value.typeName}` });
    const name = (m.header_name ?? '').toLowerCase();
    if (!name) return void errors.push({ path: joinPath(p, 'header_name'), reason: 'value length must be at least 1 characters' });
    let reject: number | undefined;
    if (m.reject_with_status) {
      const code = m.reject_with_status.code as string | number;
      const n = typeof code === 'number' ? code : lookupEnumType('envoy.type.v3.StatusCode')?.values[code];
      if (n === undefined || n === 0) return void errors.push({ path: joinPath(p, 'reject_with_status.code'), reason: `unknown HTTP status code ${String(code)}` });
      reject = n;
    }
    out.push(customHeaderDetector(name, m.allow_extension_to_set_address_as_trusted === true, reject));
  });
  return errors.length > 0 ? { ok: false, errors } : ok(out);
}
