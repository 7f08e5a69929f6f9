import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHttpServer, type ApiHandler, type RunningServer } from '../../src/main/server/http-server';
import type { JobEvent } from '../../src/shared/api';

// A transport-only handler: echoes the method and input, and lets the test push events.
const listeners = new Set<(e: JobEvent) => void>();
const api: ApiHandler = {
  handle: async (method, input) =>
    method === 'boom' ? { ok: false, error: { code: 'internal', message: 'exploded' } } : { ok: true, result: { method, input } },
  onEvent: (l) => {
    listeners.add(l);
    return () => listeners.delete(l);
  }
};

type ErrorBody = { error: { code: string } };

let server: RunningServer;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'almostrec-ui-'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'app.js'), 'console.log(1)');
  server = await startHttpServer(api, { rendererDir: dir });
});
afterAll(async () => server.close());

const call = (method: string, body: unknown, token: string | null = server.token) =>
  fetch(`${server.url}api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body)
  });

describe('browser-mode HTTP server', () => {
  it('binds to loopback and puts the token in the launch URL', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(server.launchUrl).toBe(`${server.url}?token=${server.token}`);
    expect(server.token).toMatch(/^[0-9a-f]{48}$/);
  });

  it('rejects API calls without the right token', async () => {
    expect((await call('app.info', {}, null)).status).toBe(401);
    const wrong = await call('app.info', {}, 'f'.repeat(48));
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as ErrorBody).error.code).toBe('unauthorized');
  });

  it('passes method and JSON input to the handler and returns its envelope', async () => {
    const res = await call('runs.get', { runId: 3 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, result: { method: 'runs.get', input: { runId: 3 } } });
    expect(await (await call('boom', {})).json()).toEqual({ ok: false, error: { code: 'internal', message: 'exploded' } });
  });

  it('answers malformed JSON with invalid_input', async () => {
    const res = await fetch(`${server.url}api/app.info`, { method: 'POST', headers: { Authorization: `Bearer ${server.token}` }, body: '{nope' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.code).toBe('invalid_input');
  });

  it('serves the UI with a Content-Security-Policy and never files outside it', async () => {
    const index = await fetch(server.url);
    expect(index.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await index.text()).toContain('<title>t</title>');
    expect((await fetch(`${server.url}app.js`)).headers.get('content-type')).toMatch(/javascript/);
    const escape = await fetch(`${server.url}..%2f..%2fetc%2fpasswd`);
    expect(escape.status).toBe(404);
    expect(((await escape.json()) as ErrorBody).error.code).toBe('not_found');
  });

  it('streams job events over an authenticated WebSocket only', async () => {
    const bad = new WebSocket(`${server.url.replace('http', 'ws')}events?token=nope`);
    await new Promise<void>((resolve) => bad.on('error', () => resolve()));
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}events?token=${server.token}`);
    await new Promise<void>((resolve) => ws.on('open', () => resolve()));
    const received = new Promise<unknown>((resolve) => ws.on('message', (m) => resolve(JSON.parse(String(m)))));
    const event: JobEvent = { type: 'log', jobId: 'j1', message: 'hi' };
    for (const l of listeners) l(event);
    expect(await received).toEqual(event);
    ws.close();
  });
});
