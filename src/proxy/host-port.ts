// Hosts and ports as Envoy prints them (admin output, access logs, the admin address file) and as
// URLs need them.

/** `address:port`, an IPv6 address in brackets. */
export function hostKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
