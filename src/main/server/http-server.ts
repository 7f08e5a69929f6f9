// Browser-mode transport: the same API as Electron IPC, over HTTP POST /api/<method> and a WebSocket for
// job events. Bound to 127.0.0.1 only; every request must name this server in its Host header and come
// from no other origin; the API and the event socket need the random per-launch token. Static files are
// the built UI's own (the same bytes for every install, no user data) and need no token, so the launch
// URL's page can load its script; user data, posters included (data: URLs inside API answers), only
// ever leaves through the API.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resolve } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApiErrorCode, JobEvent } from '../../shared/api';
import { UI_CSP_HEADER } from '../../shared/csp';
import type { Envelope } from '../../shared/ipc';
import { BodyTooLargeError, bearerToken, checkHostAndOrigin, readBody, tokenMatches } from './request-guards';
import { indexStaticFiles, lookupStaticFile, openStaticFile } from './static-files';

export interface ApiHandler {
  handle(method: string, input: unknown): Promise<Envelope<unknown>>;
  onEvent(listener: (e: JobEvent) => void): () => void;
}

export interface HttpServerOptions {
  rendererDir: string;
  port?: number;
  token?: string;
  maxBodyBytes?: number;
}

export interface RunningServer {
  url: string;
  /** URL including the token, to open in a browser. */
  launchUrl: string;
  token: string;
  port: number;
  close(): Promise<void>;
}

/** The largest API input is a config or a path: 1 MB leaves room and stops a flood early. */
export const DEFAULT_MAX_BODY_BYTES = 1_000_000;

const BASE_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // The launch URL carries the token: no request may pass it on.
  'Referrer-Policy': 'no-referrer'
} as const;

const PAGE_HEADERS = {
  ...BASE_HEADERS,
  'Content-Security-Policy': UI_CSP_HEADER,
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cache-Control': 'no-cache'
} as const;

class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string
  ) {
    super(message);
  }
}

export async function startHttpServer(api: ApiHandler, opts: HttpServerOptions): Promise<RunningServer> {
  const token = opts.token ?? randomBytes(24).toString('hex');
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const files = indexStaticFiles(resolve(opts.rendererDir));
  let port = 0;

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof HttpRefusal) return sendError(res, err.status, err.code, err.message, req);
      sendError(res, 500, 'internal', err instanceof Error ? err.message : String(err), req);
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const guard = checkHostAndOrigin(req.headers, port);
    if (!guard.ok) throw new HttpRefusal(guard.status, 'unauthorized', guard.message);
    const pathname = requestUrl(req).pathname;
    if (pathname.startsWith('/api/')) return serveApi(req, res, pathname.slice('/api/'.length));
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpRefusal(405, 'invalid_input', `${req.method} is not allowed here`);
    const file = staticFileFor(pathname);
    if (!file) throw new HttpRefusal(404, 'not_found', 'No such file in the workbench UI');
    const stream = await openStaticFile(file).catch(() => {
      throw new HttpRefusal(404, 'not_found', 'No such file in the workbench UI');
    });
    res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': file.contentType });
    stream.once('error', () => res.destroy());
    stream.pipe(res);
  }

  function staticFileFor(pathname: string) {
    try {
      return lookupStaticFile(files, pathname);
    } catch {
      throw new HttpRefusal(400, 'invalid_input', 'Malformed percent-encoding in the path');
    }
  }

  async function serveApi(req: IncomingMessage, res: ServerResponse, encodedMethod: string): Promise<void> {
    if (req.method !== 'POST') throw new HttpRefusal(405, 'invalid_input', 'Use POST');
    if (!tokenMatches(bearerToken(req.headers), token)) throw new HttpRefusal(401, 'unauthorized', 'Missing or wrong API token');
    let method: string;
    let input: unknown;
    try {
      method = decodeURIComponent(encodedMethod);
      const body = (await readBody(req, maxBody)).toString('utf8');
      input = body.length ? JSON.parse(body) : {};
    } catch (err) {
      if (err instanceof BodyTooLargeError) throw new HttpRefusal(413, 'invalid_input', err.message);
      throw new HttpRefusal(400, 'invalid_input', `Bad request: ${(err as Error).message}`);
    }
    sendJson(res, 200, await api.handle(method, input));
  }

  // Clients only listen on this socket; the payload cap keeps a sender from buffering megabytes here.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  const sockets = new Set<WebSocket>();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    // Node leaves an upgraded socket's errors to us: a client resetting mid-refusal must not end the process.
    socket.on('error', () => socket.destroy());
    const guard = checkHostAndOrigin(req.headers, port);
    if (!guard.ok) return refuseUpgrade(socket, guard.status, guard.message);
    let url: URL;
    try {
      url = requestUrl(req);
    } catch (err) {
      return refuseUpgrade(socket, 400, (err as Error).message);
    }
    if (url.pathname !== '/events') return refuseUpgrade(socket, 404, 'No such socket');
    if (!tokenMatches(url.searchParams.get('token'), token)) return refuseUpgrade(socket, 401, 'Missing or wrong API token');
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      // An oversized or malformed frame closes that socket (ws sends 1009/1002); unheard, it would end the process.
      ws.on('error', () => ws.terminate());
    });
  });
  const unsubscribe = api.onEvent((e) => {
    const msg = JSON.stringify(e);
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.send(msg);
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}/`;
  return {
    url,
    launchUrl: `${url}?token=${token}`,
    token,
    port,
    close: async () => {
      unsubscribe();
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  };
}

/** The request's target as a URL; a target no URL parser accepts is the client's error, not the server's. */
function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://127.0.0.1');
  } catch {
    throw new HttpRefusal(400, 'invalid_input', 'Malformed request target');
  }
}

function refuseUpgrade(socket: Socket, status: number, message: string): void {
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 421: 'Misdirected Request' }[status] ?? 'Error';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${message}\n`);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...BASE_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** A refusal as the API's envelope; the connection closes when the request's body was left unread. */
function sendError(res: ServerResponse, status: number, code: ApiErrorCode, message: string, req: IncomingMessage): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { ok: false, error: { code, message } }, req.complete ? {} : { Connection: 'close' });
}
