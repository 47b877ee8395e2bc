/**
 * A browser cannot set headers on a WebSocket upgrade, so a tab's worker offers its token as
 * a second subprotocol, `arbor-token.BASE64URL(token)`, after `arbor`, which is the one the
 * coordinator answers with: the token is never echoed back.
 */
export const SOCKET_PROTOCOL = 'arbor';
const TOKEN_PREFIX = 'arbor-token.';
const MAX_TOKEN_BYTES = 512;

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The subprotocols a browser offers: `arbor`, then its token when it has one. */
export function socketProtocols(token?: string): string[] {
  return token === undefined
    ? [SOCKET_PROTOCOL]
    : [SOCKET_PROTOCOL, TOKEN_PREFIX + toBase64Url(new TextEncoder().encode(token))];
}

/** The token in a `Sec-WebSocket-Protocol` header, or undefined when there is none or it is malformed. */
export function tokenFromProtocols(header: string | undefined): string | undefined {
  if (header === undefined || header.length > 4 * MAX_TOKEN_BYTES) return undefined;
  const offered = header
    .split(',')
    .map((p) => p.trim())
    .find((p) => p.startsWith(TOKEN_PREFIX));
  const encoded = offered?.slice(TOKEN_PREFIX.length);
  if (encoded === undefined || !/^[A-Za-z0-9_-]+$/.test(encoded)) return undefined;
  try {
    const binary = atob(encoded.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
