// x-forwarded-client-cert, as Envoy's ConnectionManagerUtility::mutateXfccRequestHeader writes it:
// removed, kept, set or appended per forward_client_cert_details, with the element built from the
// downstream mTLS session (`By=...;Hash=...;Cert="...";Chain="...";Subject="...";URI=...;DNS=...`).
// Pure header editing: nothing here fails.

import type { HeaderMap } from './headers.ts';
import type { ClientCertDetail, ForwardClientCertDetails } from './hcm-config.ts';
import type { TlsConnectionInfo } from '../tls/types.ts';

export const XFCC = 'x-forwarded-client-cert';

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Envoy's PercentEncoding::urlEncode: every byte outside RFC 3986's unreserved set as `%XX`
 * (upper-case hex). For a PEM that is `%0A` for newlines, `%20`, `%2B`, `%2F`, `%3D`.
 */
export function urlEncodePem(s: string): string {
  let out = '';
  for (const ch of s) {
    if (UNRESERVED.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** The element this hop adds for APPEND_FORWARD / SANITIZE_SET. */
export function xfccElement(tls: TlsConnectionInfo, details: readonly ClientCertDetail[]): string {
  const parts: string[] = [];
  const by = tls.localUriSans[0];
  if (by) parts.push(`By=${by}`);
  if (tls.peerFingerprintSha256) parts.push(`Hash=${tls.peerFingerprintSha256}`);
  for (const d of details) {
    switch (d) {
      case 'Cert':
        if (tls.peerCertificatePem) parts.push(`Cert="${urlEncodePem(tls.peerCertificatePem)}"`);
        break;
      case 'Chain':
        if (tls.peerChainPem) parts.push(`Chain="${urlEncodePem(tls.peerChainPem)}"`);
        break;
      case 'Subject':
        // Present even when empty, as in Envoy.
        parts.push(`Subject="${tls.peerSubject}"`);
        break;
      case 'URI':
        parts.push(`URI=${tls.peerUriSans[0] ?? ''}`);
        break;
      case 'DNS':
        for (const dns of tls.peerDnsSans) parts.push(`DNS=${dns}`);
        break;
    }
  }
  return parts.join(';');
}

/** Applies forward_client_cert_details to the request headers, in place. */
export function mutateXfcc(h: HeaderMap, mode: ForwardClientCertDetails, details: readonly ClientCertDetail[], tls: TlsConnectionInfo | undefined): void {
  if (mode === 'ALWAYS_FORWARD_ONLY') return;
  // Not mutual TLS (plaintext, or no client certificate): the header is never trusted.
  if (mode === 'SANITIZE' || !tls?.peerCertificatePresented) {
    h.remove(XFCC);
    return;
  }
  if (mode === 'FORWARD_ONLY') return;
  const element = xfccElement(tls, details);
  if (mode === 'SANITIZE_SET') {
    h.set(XFCC, element);
    return;
  }
  const prev = h.getAll(XFCC).join(',');
  h.set(XFCC, prev ? `${prev},${element}` : element);
}
