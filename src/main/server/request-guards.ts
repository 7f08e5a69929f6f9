// The checks browser mode runs on every request before it reads anything else: the Host and Origin headers
// (a web page must not reach the loopback server, even after DNS rebinding points its own name at
// 127.0.0.1), the per-launch token, and a bounded request body.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** The names this server answers to: the loopback address it is bound to, and `localhost`. */
function ownHosts(port: number): Set<string> {
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  // A browser leaves the default port out of the Host header.
  if (port === 80) for (const h of ['127.0.0.1', 'localhost']) hosts.add(h);
  return hosts;
}

export type GuardVerdict = { ok: true } | { ok: false; status: number; message: string };

/**
 * A DNS-rebinding page reaches 127.0.0.1 under its own name, so its requests carry a foreign Host header;
 * a cross-site page's requests carry a foreign Origin. Requests without an Origin (curl, the ws client, the
 * browser's own GET of a page) are not cross-site; the token still guards every byte of data.
 */
export function checkHostAndOrigin(headers: IncomingHttpHeaders, port: number): GuardVerdict {
  const hosts = ownHosts(port);
  const host = headers.host?.toLowerCase();
  if (!host || !hosts.has(host)) {
    return { ok: false, status: 421, message: `Refused: Host "${headers.host ?? ''}" is not this server (127.0.0.1:${port})` };
  }
  const origin = headers.origin;
  if (origin !== undefined && !isOwnOrigin(origin, hosts)) {
    return { ok: false, status: 403, message: `Refused: requests from origin "${origin}" are not allowed` };
  }
  return { ok: true };
}

function isOwnOrigin(origin: string, hosts: Set<string>): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file:) and garbage alike
  }
  return url.protocol === 'http:' && url.origin === origin && hosts.has(url.host);
}

/**
 * Constant time whatever is given: both sides are hashed to 32 bytes first, so neither the token's
 * characters nor its length can be learned from how long a refusal takes.
 */
export function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** The token of an API call: `Authorization: Bearer <token>`. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '');
  return m?.[1];
}

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`Request body too large: the limit is ${limit.toLocaleString('en-US')} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads the whole body, keeping at most `limit` bytes. A larger body is read to its end and dropped, so the
 * client, still sending, gets the 413 rather than a reset connection; past 16 × `limit` (declared or
 * counted) reading stops and the connection is closed after the answer.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const drainLimit = 16 * limit;
  return new Promise((resolveBody, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > drainLimit) {
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > drainLimit) {
        req.pause();
        reject(new BodyTooLargeError(limit));
      }
    });
    req.on('end', () => (size <= limit ? resolveBody(Buffer.concat(chunks)) : reject(new BodyTooLargeError(limit))));
    req.on('error', reject);
  });
}
