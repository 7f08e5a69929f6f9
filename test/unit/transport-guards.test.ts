import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAppPage } from '../../src/main/electron-hardening';
import { bearerToken, checkHostAndOrigin, tokenMatches } from '../../src/main/server/request-guards';

describe('browser-mode request guards', () => {
  it('accepts only this server as Host, and no foreign Origin', () => {
    expect(checkHostAndOrigin({ host: '127.0.0.1:5000' }, 5000)).toEqual({ ok: true });
    expect(checkHostAndOrigin({ host: 'localhost:5000', origin: 'http://localhost:5000' }, 5000)).toEqual({ ok: true });
    expect(checkHostAndOrigin({ host: '127.0.0.1:5000', origin: 'http://127.0.0.1:5000' }, 5000)).toEqual({ ok: true });
    expect(checkHostAndOrigin({ host: 'rebound.example:5000' }, 5000)).toMatchObject({ ok: false, status: 421 });
    expect(checkHostAndOrigin({ host: '127.0.0.1' }, 5000)).toMatchObject({ ok: false, status: 421 });
    expect(checkHostAndOrigin({}, 5000)).toMatchObject({ ok: false, status: 421 });
    for (const origin of ['http://evil.example', 'null', 'https://127.0.0.1:5000', 'http://127.0.0.1:5001', 'http://127.0.0.1:5000/', 'garbage']) {
      expect(checkHostAndOrigin({ host: '127.0.0.1:5000', origin }, 5000), origin).toMatchObject({ ok: false, status: 403 });
    }
    // Port 80: browsers leave the port out of Host and Origin.
    expect(checkHostAndOrigin({ host: '127.0.0.1', origin: 'http://127.0.0.1' }, 80)).toEqual({ ok: true });
  });

  it('matches the token whole, whatever the length given', () => {
    const token = 'ab'.repeat(24);
    expect(tokenMatches(token, token)).toBe(true);
    for (const given of [undefined, null, '', token.slice(1), `${token}c`, token.toUpperCase(), 'x'.repeat(10_000)]) {
      expect(tokenMatches(given, token)).toBe(false);
    }
    expect(bearerToken({ authorization: `Bearer ${token}` })).toBe(token);
    expect(bearerToken({ authorization: `bearer  ${token}` })).toBe(token);
    expect(bearerToken({ authorization: token })).toBeUndefined();
    expect(bearerToken({ authorization: `Bearer ${token} extra` })).toBeUndefined();
  });
});

describe('Electron IPC sender check', () => {
  const file = pathToFileURL('/app/out/renderer/index.html').href;
  it('knows the app page by its file, or by the dev server origin', () => {
    expect(isAppPage(file, file)).toBe(true);
    expect(isAppPage(`${file}#/runs`, file)).toBe(true);
    expect(isAppPage(pathToFileURL('/app/out/renderer/other.html').href, file)).toBe(false);
    expect(isAppPage('file:///app/out/renderer/../renderer/index.html', file)).toBe(true);
    expect(isAppPage('https://evil.example/index.html', file)).toBe(false);
    expect(isAppPage('not a url', file)).toBe(false);
    expect(isAppPage('http://localhost:5173/src/x', 'http://localhost:5173/')).toBe(true);
    expect(isAppPage('http://localhost:5174/', 'http://localhost:5173/')).toBe(false);
  });
});
