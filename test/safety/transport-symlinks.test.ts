// Item 5 of issue 13, symbolic links: a UI folder holding links that point out of it (a file, a folder,
// a file swapped for a link after the server started) must serve none of them. The built out/renderer
// holds no link, so this runs the same server code on a UI folder made here.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type RunningServer } from '../../src/main/server/http-server';
import { rawGet } from './raw-http';

const SECRET = `outside-${process.pid}-${Date.now()}`;
let dir: string;
let server: RunningServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'almostrec-symlinks-'));
  const ui = join(dir, 'ui');
  const outside = join(dir, 'outside');
  mkdirSync(join(ui, 'assets'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), SECRET);
  writeFileSync(join(ui, 'index.html'), '<!doctype html><title>ui</title>');
  writeFileSync(join(ui, 'assets', 'app.js'), 'console.log("ui")');
  writeFileSync(join(ui, 'assets', 'later.js'), 'console.log("later")');
  symlinkSync(join(outside, 'secret.txt'), join(ui, 'leak.txt'));
  symlinkSync(join(outside, 'secret.txt'), join(ui, 'assets', 'leak.js'));
  symlinkSync(outside, join(ui, 'linked-dir'));
  symlinkSync('../outside/secret.txt', join(ui, 'relative-leak.txt'));
  symlinkSync('/', join(ui, 'root'));
  server = await startHttpServer({ handle: async () => ({ ok: true, result: null }), onEvent: () => () => undefined }, { rendererDir: ui });
  // After the start: a file of the UI replaced by a link to the secret.
  unlinkSync(join(ui, 'assets', 'later.js'));
  symlinkSync(join(outside, 'secret.txt'), join(ui, 'assets', 'later.js'));
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('static files and symbolic links', () => {
  it('serves the UI files', async () => {
    expect((await rawGet(server.port, '/')).body.toString()).toContain('<title>ui</title>');
    expect((await rawGet(server.port, '/assets/app.js')).body.toString()).toBe('console.log("ui")');
  });

  it('follows no link out of the UI folder, made before or after the start', async () => {
    for (const target of ['/leak.txt', '/assets/leak.js', '/linked-dir/secret.txt', '/relative-leak.txt', '/root/etc/passwd', '/assets/later.js']) {
      const res = await rawGet(server.port, target);
      expect(res.status, target).toBe(404);
      expect(res.body.toString(), target).not.toContain(SECRET);
      expect(res.body.toString(), target).not.toContain('root:');
    }
  });
});
