// Item 5 of issue 13: browser mode's server, attacked for real. The built app (out/main/browser.js, as
// `npm run start:browser` runs it) is started on a fresh data folder; each test sends what a web page
// elsewhere, another local user or a hostile client could send, and checks it is refused and leaks nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { apiInputs } from '../../src/shared/api';
import { BAD_INPUTS, UNKNOWN_METHODS, expectedRefusal } from './transport-bad-inputs';
import { rawGet, rawRequest } from './raw-http';

const root = resolve(__dirname, '..', '..');
const browserMain = join(root, 'out', 'main', 'browser.js');
const rendererDir = join(root, 'out', 'renderer');
const genericFixture = join(root, 'test', 'fixtures', 'importers', 'generic');
const LIMIT = 1_000_000;

type Envelope = { ok: boolean; result?: unknown; error?: { code: string; message: string } };

let server: ChildProcess;
let home: string;
let port: number;
let token: string;
let base: string;
/** A file outside the UI folder that no request may read, with a marker to look for in every answer. */
let secretPath: string;
const SECRET = `secret-${process.pid}-${Date.now()}`;

beforeAll(async () => {
  if (!existsSync(browserMain) || !existsSync(join(rendererDir, 'index.html'))) {
    throw new Error('The app is not built: run "npm run build" before the safety tests');
  }
  home = mkdtempSync(join(tmpdir(), 'almostrec-transport-'));
  secretPath = join(home, 'secret.txt');
  writeFileSync(secretPath, SECRET);
  server = spawn(process.execPath, [browserMain, '--no-open', '--no-import'], {
    env: { ...process.env, ALMOSTREC_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe']
  });
  const launchUrl = await new Promise<string>((resolveUrl, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /Open: (http:\/\/\S+)/.exec(output);
      if (m) resolveUrl(m[1]);
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', onData);
    server.on('exit', (code) => reject(new Error(`browser mode exited with ${code}: ${output}`)));
  });
  const url = new URL(launchUrl);
  port = Number(url.port);
  token = url.searchParams.get('token')!;
  base = url.origin;
});

afterAll(() => {
  server?.kill('SIGTERM');
  if (home) rmSync(home, { recursive: true, force: true });
});

const post = (method: string, body: unknown, headers: Record<string, string> = { Authorization: `Bearer ${token}` }) =>
  fetch(`${base}/api/${encodeURIComponent(method)}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });

async function call(method: string, input: unknown): Promise<Envelope> {
  const res = await post(method, input);
  expect(res.status).toBe(200);
  return (await res.json()) as Envelope;
}

/** Opens the event socket; resolves with 'open' or the HTTP status the upgrade was refused with. */
/** `s` with character i changed to another one. */
const flip = (s: string, i: number): string => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1);

function openSocket(path: string, headers: Record<string, string> = {}): Promise<'open' | number> {
  return new Promise((resolveOpen, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.on('open', () => {
      ws.close();
      resolveOpen('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolveOpen(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

function refusedConnection(host: string): Promise<string> {
  return new Promise((resolveRefusal) => {
    const socket = connect({ host, port, timeout: 3000 });
    socket.on('connect', () => {
      socket.destroy();
      resolveRefusal('connected');
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolveRefusal('timeout');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolveRefusal(err.code ?? 'error'));
  });
}

describe('browser-mode server (out/main/browser.js)', () => {
  it('listens on 127.0.0.1 only', async () => {
    expect(base).toBe(`http://127.0.0.1:${port}`);
    if (existsSync('/proc/net/tcp')) {
      // Listening sockets (state 0A) on our port: one, on 127.0.0.1 (0100007F), and none over IPv6.
      const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
      const listening = (file: string) =>
        readFileSync(file, 'utf8')
          .split('\n')
          .slice(1)
          .map((l) => l.trim().split(/\s+/))
          .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A')
          .map((f) => f[1]);
      expect(listening('/proc/net/tcp')).toEqual([`0100007F:${hexPort}`]);
      if (existsSync('/proc/net/tcp6')) expect(listening('/proc/net/tcp6')).toEqual([]);
    }
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal)
      .map((a) => a!.address);
    for (const address of [...external, '::1']) expect(await refusedConnection(address), address).not.toBe('connected');
  });

  it('requires the token on every API method, in the Authorization header, compared whole', async () => {
    const refused = async (res: Response) => {
      expect(res.status).toBe(401);
      expect(((await res.json()) as Envelope).error?.code).toBe('unauthorized');
    };
    for (const method of Object.keys(apiInputs)) await refused(await post(method, {}, {}));
    const wrong = [flip(token, 0), flip(token, token.length - 1), token.slice(0, -1), `${token}0`, token.toUpperCase(), 'x', `${token} ${token}`];
    for (const t of wrong) await refused(await post('app.info', {}, { Authorization: `Bearer ${t}` }));
    await refused(await post('app.info', {}, { Authorization: token }));
    await refused(await fetch(`${base}/api/app.info?token=${token}`, { method: 'POST', body: '{}' }));
    await refused(await post('app.info', {}, { Cookie: `token=${token}` }));
    expect((await call('app.info', {})).ok).toBe(true);
  });

  it('requires the token on the event socket', async () => {
    expect(await openSocket('/events')).toBe(401);
    expect(await openSocket('/events?token=')).toBe(401);
    // The last character flipped (a fixed '0' in its place was the token itself 1 time in 16).
    expect(await openSocket(`/events?token=${flip(token, token.length - 1)}`)).toBe(401);
    expect(await openSocket(`/events`, { Authorization: `Bearer ${'0'.repeat(48)}` })).toBe(401);
    expect(await openSocket(`/other?token=${token}`)).toBe(404);
    expect(await openSocket(`/events?token=${token}`)).toBe('open');
  });

  it('refuses a foreign Host header (DNS rebinding), page and API alike', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, `127.0.0.1.nip.io:${port}`, `[::1]:${port}`, '']) {
      for (const target of ['/', '/index.html']) {
        const res = await rawGet(port, target, { Host: host });
        // Without a Host at all, Node's parser answers 400 itself before the server sees the request.
        expect(res.status, `Host "${host}" ${target}`).toBe(host === '' ? 400 : 421);
        expect(res.body.toString()).not.toContain('<html');
      }
      const api = await rawRequest(port, [`POST /api/app.info HTTP/1.1`, `Host: ${host}`, `Authorization: Bearer ${token}`, 'Content-Length: 2'].join('\r\n'), '{}');
      expect(api.status).toBe(421);
      expect(api.body.toString()).not.toContain(home);
    }
    const http10 = await rawRequest(port, 'GET / HTTP/1.0');
    expect(http10.status).toBe(421);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) expect((await rawGet(port, '/', { Host: host })).status).toBe(200);
  });

  it('refuses a foreign Origin on the API and on the WebSocket upgrade', async () => {
    const withOrigin = (origin: string) => post('app.info', {}, { Authorization: `Bearer ${token}`, Origin: origin });
    for (const origin of ['http://evil.example', `http://evil.example:${port}`, 'null', `https://127.0.0.1:${port}`, `http://127.0.0.1:${port + 1}`, 'file://', `http://127.0.0.1:${port}/x`]) {
      const res = await withOrigin(origin);
      expect(res.status, origin).toBe(403);
      expect(((await res.json()) as Envelope).error?.code).toBe('unauthorized');
      expect(await openSocket(`/events?token=${token}`, { Origin: origin }), origin).toBe(403);
    }
    for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
      expect((await withOrigin(origin)).status).toBe(200);
      expect(await openSocket(`/events?token=${token}`, { Origin: origin })).toBe('open');
    }
    expect(await openSocket(`/events?token=${token}`, { Host: 'evil.example' })).toBe(421);
  });

  it('limits request bodies with a clear 413, then goes on serving', async () => {
    const tooLarge = async (res: Response) => {
      expect(res.status).toBe(413);
      expect((await res.json()) as Envelope).toEqual({
        ok: false,
        error: { code: 'invalid_input', message: 'Request body too large: the limit is 1,000,000 bytes' }
      });
    };
    const auth = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    await tooLarge(await fetch(`${base}/api/app.info`, { method: 'POST', headers: auth, body: 'x'.repeat(LIMIT + 1) }));
    // No Content-Length: the server counts while it reads.
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 40; i++) c.enqueue(new Uint8Array(100_000).fill(32));
        c.close();
      }
    });
    await tooLarge(await fetch(`${base}/api/app.info`, { method: 'POST', headers: auth, body: chunks, duplex: 'half' } as RequestInit));
    // Exactly the limit is read, and answered by the schema.
    const atLimit = JSON.stringify({ runId: 1, pad: '' }).length;
    const res = await fetch(`${base}/api/runs.get`, { method: 'POST', headers: auth, body: JSON.stringify({ runId: 1, pad: ' '.repeat(LIMIT - atLimit) }) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Envelope).error?.message).toMatch(/Unrecognized key.*pad/);
    // Event-socket frames are capped too: a large one closes that socket (1009), not the server.
    const ws = new WebSocket(`ws://127.0.0.1:${port}/events?token=${token}`);
    await new Promise((r) => ws.on('open', r));
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.send('x'.repeat(100_000));
    expect(await closed).toBe(1009);
    expect((await call('app.info', {})).ok).toBe(true);
  });

  it('validates API input with the shared schema (the same refusals as Electron IPC)', async () => {
    for (const bad of BAD_INPUTS) expect(await call(bad.method, bad.input), bad.what).toEqual(expectedRefusal(bad));
    for (const method of UNKNOWN_METHODS) expect(await call(method, {}), method).toMatchObject({ ok: false, error: { code: 'not_found' } });
    const malformed = await fetch(`${base}/api/app.info`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: '{"a":' });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as Envelope).error?.code).toBe('invalid_input');
    const badEscape = await rawRequest(port, [`POST /api/%E0%A4%A HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Authorization: Bearer ${token}`, 'Content-Length: 2'].join('\r\n'), '{}');
    expect(badEscape.status).toBe(400);
  });

  it('serves only the files of the built UI, whatever the path says', async () => {
    const hops = '../'.repeat(12);
    const abs = secretPath.replace(/^\//, '');
    const probes = [
      `/${hops}${abs}`,
      `/assets/${hops}${abs}`,
      `/${hops.replaceAll('../', '%2e%2e/')}${abs}`,
      `/${hops.replaceAll('../', '%2e%2e%2f')}${abs.replaceAll('/', '%2f')}`,
      `/${hops.replaceAll('../', '..%2f')}${abs}`,
      `/${hops.replaceAll('../', '..%5c')}${abs}`,
      `/${hops.replaceAll('../', '%252e%252e%252f')}${abs}`,
      `/${hops.replaceAll('../', '%c0%ae%c0%ae/')}${abs}`,
      `/${secretPath}`,
      `/%2f${abs.replaceAll('/', '%2f')}`,
      `//${abs}`,
      `/${abs}`,
      `/../main/index.js`,
      `/assets/../../main/index.js`,
      `/%2e%2e/main/index.js`,
      `/..%2fmain%2findex.js`,
      `/${hops}etc/passwd`,
      `/${join(home, 'catalog.sqlite')}`,
      `/index.html%00.png`,
      `/index.html%00`,
      '/index.html\u0000.png',
      `http://127.0.0.1:${port}/${hops}${abs}`,
      `/${join(genericFixture, 'images', 'm2.png')}`,
      '/images/m2.png',
      '/favicon.ico'
    ];
    const mainBundle = readFileSync(join(root, 'out', 'main', 'index.js'));
    for (const target of probes) {
      const res = await rawGet(port, target);
      expect([400, 404], `${JSON.stringify(target)} → ${res.status}`).toContain(res.status);
      const body = res.body.toString('latin1');
      expect(body).not.toContain(SECRET);
      expect(body).not.toContain('root:');
      expect(body).not.toContain('SQLite format 3');
      expect(res.body.includes(mainBundle.subarray(0, 200))).toBe(false);
    }
    // What is served is byte for byte a file of the UI folder, with the page's security headers.
    const assets = readdirSync(join(rendererDir, 'assets')).map((f) => `assets/${f}`);
    for (const rel of ['index.html', ...assets]) {
      const res = await rawGet(port, `/${rel}`);
      expect(res.status, rel).toBe(200);
      expect(res.body.equals(readFileSync(join(rendererDir, rel))), rel).toBe(true);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    const page = await rawGet(port, `/?token=${token}`);
    expect(page.body.equals(readFileSync(join(rendererDir, 'index.html')))).toBe(true);
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'none'; script-src 'self';.*frame-ancestors 'none'$/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['x-frame-options']).toBe('DENY');
    const put = await rawRequest(port, [`PUT /index.html HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Content-Length: 1'].join('\r\n'), 'x');
    expect(put.status).toBe(405);
  });

  it('survives malformed requests and upgrades, still answering afterwards', async () => {
    const upgrade = ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
    for (const target of ['http://[', 'http://a:b/', '//[x]/', 'http://%/', '/events?token=%']) {
      for (const extra of [[], upgrade]) {
        const res = await rawRequest(port, [`GET ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...extra].join('\r\n'));
        expect([400, 401, 404], `${target} ${extra.length ? 'upgrade' : 'GET'} → ${res.status}`).toContain(res.status);
      }
    }
    for (const garbage of ['\u0000\u0001\u0002', 'GET / HTTP/9.9', `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Big: ${'a'.repeat(20_000)}`]) {
      const res = await rawRequest(port, garbage).catch(() => null);
      expect(res === null || res.status >= 400, JSON.stringify(garbage.slice(0, 20))).toBe(true);
    }
    expect(server.exitCode).toBeNull();
    expect((await call('app.info', {})).ok).toBe(true);
  });

  it('returns posters only inside token-guarded API answers, from the catalog', async () => {
    const columns = { user: 'who', item: 'what', timestamp: 'when', rating: 'stars', itemId: 'key', title: 'name', text: 'about', genres: 'tags' };
    const started = await call('datasets.import', {
      format: 'generic',
      path: join(genericFixture, 'events.csv'),
      name: 'posters',
      options: { itemsCsv: 'catalog.csv', imagesDir: 'images', columns }
    });
    expect(started.ok).toBe(true);
    const { jobId } = started.result as { jobId: string };
    let job: { status: string; error: unknown } | undefined;
    for (const end = Date.now() + 120_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
      job = ((await call('jobs.list', {})).result as Array<{ jobId: string; status: string; error: unknown }>).find((j) => j.jobId === jobId);
      if (job && ['succeeded', 'failed', 'cancelled'].includes(job.status)) break;
    }
    expect(job, JSON.stringify(job)).toMatchObject({ status: 'succeeded' });
    const [dataset] = (await call('datasets.list', {})).result as Array<{ id: number }>;
    const search = { datasetId: dataset.id, query: 'Beta' };
    const items = (await call('items.search', search)).result as { items: Array<{ imageUrl: string | null }> };
    const poster = items.items[0].imageUrl!;
    expect(poster).toMatch(/^data:image\/png;base64,/);
    expect(Buffer.from(poster.split(',')[1], 'base64').equals(readFileSync(join(genericFixture, 'images', 'm2.png')))).toBe(true);
    // The same answer, and so the poster, without the token: refused.
    const anonymous = await post('items.search', search, {});
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain('base64');
  });
});
