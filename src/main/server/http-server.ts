// Browser-mode transport: the same API as Electron IPC, over HTTP POST /api/<method> and a WebSocket for
// job events. Loopback only, with a random per-launch bearer token.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { JobEvent } from '../../shared/api';
import type { Envelope } from '../../shared/ipc';

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

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2'
};

const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self' ws://127.0.0.1:* http://127.0.0.1:*";

export async function startHttpServer(api: ApiHandler, opts: HttpServerOptions): Promise<RunningServer> {
  const token = opts.token ?? randomBytes(24).toString('hex');
  const maxBody = opts.maxBodyBytes ?? 1_000_000;
  const rendererRoot = resolve(opts.rendererDir);
  if (!existsSync(join(rendererRoot, 'index.html'))) {
    throw new Error(`The UI is not built: ${join(rendererRoot, 'index.html')} is missing (run "npm run build")`);
  }

  const server: Server = createServer((req, res) => {
    void route(req, res).catch((err: unknown) => {
      sendJson(res, 500, { ok: false, error: { code: 'internal', message: err instanceof Error ? err.message : String(err) } });
    });
  });

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname.startsWith('/api/')) {
      if (req.method !== 'POST') return sendJson(res, 405, { ok: false, error: { code: 'invalid_input', message: 'Use POST' } });
      if (!authorized(req.headers.authorization?.replace(/^Bearer\s+/i, ''), token)) {
        return sendJson(res, 401, { ok: false, error: { code: 'unauthorized', message: 'Missing or wrong API token' } });
      }
      let input: unknown;
      try {
        const body = await readBody(req, maxBody);
        input = body.length ? JSON.parse(body) : {};
      } catch (err) {
        return sendJson(res, 400, { ok: false, error: { code: 'invalid_input', message: `Bad request body: ${(err as Error).message}` } });
      }
      const envelope = await api.handle(decodeURIComponent(url.pathname.slice('/api/'.length)), input);
      return sendJson(res, 200, envelope);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { ok: false, error: { code: 'invalid_input', message: 'Method not allowed' } });
    serveStatic(url.pathname, res);
  }

  function serveStatic(pathname: string, res: ServerResponse): void {
    const rel = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '');
    const file = normalize(join(rendererRoot, rel));
    const inside = file === rendererRoot || file.startsWith(rendererRoot + sep);
    const target = inside && existsSync(file) && statSync(file).isFile() ? file : join(rendererRoot, 'index.html');
    res.writeHead(200, {
      'Content-Type': MIME[extname(target)] ?? 'application/octet-stream',
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache'
    });
    createReadStream(target).pipe(res);
  }

  const wss = new WebSocketServer({ noServer: true });
  const sockets = new Set<WebSocket>();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/events' || !authorized(url.searchParams.get('token') ?? undefined, token)) {
      socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
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
  const port = (server.address() as AddressInfo).port;
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

function authorized(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error(`body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(text);
}
