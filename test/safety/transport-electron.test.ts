// Item 4 of issue 13: the Electron shell's hardening, read from the BUILT bundles (out/, `npm run build`).
// out/main/index.js runs for real (the WorkbenchService, its catalog and worker included) against a
// recording stand-in for `electron`; the test then plays what a hostile page would try: navigate away,
// open windows, ask for permissions, call IPC with bad input or from a frame that is not the app's.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UI_CSP_HEADER, UI_CSP_META } from '../../src/shared/csp';
import { BAD_INPUTS, UNKNOWN_METHODS, expectedRefusal } from './transport-bad-inputs';
import { FakeFrame, FakeWebContents, createFakeElectron, interceptElectron, type FakeBrowserWindowLike, type FakeElectron } from './fake-electron';

const root = resolve(__dirname, '..', '..');
const out = (...p: string[]) => join(root, 'out', ...p);
const appUrl = pathToFileURL(out('renderer', 'index.html')).href;

type Envelope = { ok: boolean; result?: unknown; error?: { code: string; message: string } };
type Invoke = (event: unknown, method: unknown, input: unknown) => Promise<Envelope>;

async function waitFor(condition: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An Electron event whose preventDefault() is recorded. */
function preventable(): { prevented: boolean; preventDefault(): void } {
  return {
    prevented: false,
    preventDefault() {
      this.prevented = true;
    }
  };
}

/** "directive → sources" of a CSP string. */
function directives(policy: string): Map<string, string[]> {
  return new Map(policy.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0]).map(([name, ...sources]) => [name, sources]));
}

let electron: FakeElectron;
let win: FakeBrowserWindowLike;
let home: string;
let restoreRequire: () => void;
const errors: unknown[] = [];
const consoleError = console.error;

beforeAll(async () => {
  for (const f of [out('main', 'index.js'), out('preload', 'index.js'), out('renderer', 'index.html')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" before the safety tests`);
  }
  home = mkdtempSync(join(tmpdir(), 'almostrec-electron-'));
  process.env.ALMOSTREC_HOME = home;
  console.error = (...args: unknown[]) => errors.push(args);
  electron = createFakeElectron();
  restoreRequire = interceptElectron(electron);
  createRequire(__filename)(out('main', 'index.js'));
  await waitFor(() => electron.windows.length > 0 || electron.app.exitCodes.length > 0, 'the main window');
  if (electron.app.exitCodes.length > 0) throw new Error(`the main process exited: ${JSON.stringify(errors)}`);
  win = electron.windows[0];
});

afterAll(async () => {
  // Quit as a user would; the shell closes the service (and its import job) before it lets the app go.
  if (electron) {
    const quit = preventable();
    electron.app.emit('before-quit', quit);
    await waitFor(() => electron.app.quitCalls > 0, 'the app to quit');
  }
  restoreRequire?.();
  console.error = consoleError;
  rmSync(home, { recursive: true, force: true });
});

describe('Electron main bundle (out/main/index.js)', () => {
  it('opens one window that is isolated, sandboxed, without Node and with web security', () => {
    expect(electron.windows).toHaveLength(1);
    const prefs = win.options.webPreferences ?? {};
    expect(prefs).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false
    });
    expect(prefs.enableBlinkFeatures).toBeUndefined();
    expect(prefs.additionalArguments).toBeUndefined();
    expect(prefs.preload).toBe(out('preload', 'index.js'));
    expect(win.loadedUrl).toBe(appUrl);
  });

  it('refuses navigation, new windows and webviews in every web contents the app creates', () => {
    const later = new FakeWebContents();
    electron.app.emit('web-contents-created', preventable(), later);
    for (const contents of [win.webContents, later]) {
      for (const target of ['https://evil.example/', 'file:///etc/passwd', appUrl]) {
        const navigation = preventable();
        contents.emit('will-navigate', navigation, target);
        expect(navigation.prevented, `will-navigate to ${target}`).toBe(true);
      }
      expect(contents.windowOpenHandler).not.toBeNull();
      for (const url of ['https://evil.example/', 'javascript:alert(1)', 'file:///etc/passwd', appUrl]) {
        expect(contents.windowOpenHandler!({ url })).toEqual({ action: 'deny' });
      }
      const webview = preventable();
      contents.emit('will-attach-webview', webview, {}, { src: 'https://evil.example/' });
      expect(webview.prevented).toBe(true);
    }
  });

  it('denies every permission but a clipboard write from the app page', () => {
    const { permissionRequest, permissionCheck, devicePermission } = electron.session;
    expect(permissionRequest && permissionCheck && devicePermission).toBeTruthy();
    const request = (contents: unknown, permission: string, requestingUrl: string) => {
      const answers: boolean[] = [];
      (permissionRequest as (...a: unknown[]) => void)(contents, permission, (granted: boolean) => answers.push(granted), { requestingUrl, isMainFrame: true });
      expect(answers, `${permission} from ${requestingUrl}`).toHaveLength(1);
      return answers[0];
    };
    const check = (contents: unknown, permission: string, requestingUrl: string | undefined) =>
      (permissionCheck as (...a: unknown[]) => boolean)(contents, permission, 'file://', { requestingUrl, isMainFrame: true });
    const refused = ['media', 'geolocation', 'notifications', 'midi', 'midiSysex', 'pointerLock', 'fullscreen', 'openExternal', 'clipboard-read',
      'display-capture', 'hid', 'serial', 'usb', 'idle-detection', 'window-management', 'storage-access', 'top-level-storage-access',
      'fileSystem', 'keyboardLock', 'speaker-selection', 'mediaKeySystem', 'unknown'];
    for (const permission of refused) {
      expect(request(win.webContents, permission, appUrl), permission).toBe(false);
      expect(check(win.webContents, permission, appUrl), permission).toBe(false);
    }
    // Table 2's "Copy LaTeX": write-only, for the app page in the app window, and for nothing else.
    expect(request(win.webContents, 'clipboard-sanitized-write', appUrl)).toBe(true);
    expect(check(win.webContents, 'clipboard-sanitized-write', appUrl)).toBe(true);
    const other = new FakeWebContents();
    for (const [contents, url] of [[win.webContents, 'https://evil.example/'], [other, appUrl], [null, appUrl], [win.webContents, undefined]] as const) {
      expect(check(contents, 'clipboard-sanitized-write', url), String(url)).toBe(false);
      if (contents && url) expect(request(contents, 'clipboard-sanitized-write', url)).toBe(false);
    }
    expect((devicePermission as (...a: unknown[]) => boolean)({ deviceType: 'usb', origin: appUrl, device: {} })).toBe(false);
  });

  it('enforces one strict Content-Security-Policy: as a response header and in the built page', () => {
    let answered: { responseHeaders?: Record<string, string[]> } | null = null;
    (electron.session.headersReceived as (...a: unknown[]) => void)(
      { url: 'http://localhost:5173/', responseHeaders: { 'X-Other': ['kept'] } },
      (response: { responseHeaders?: Record<string, string[]> }) => (answered = response)
    );
    expect(answered!.responseHeaders).toEqual({ 'X-Other': ['kept'], 'Content-Security-Policy': [UI_CSP_HEADER] });

    const html = readFileSync(out('renderer', 'index.html'), 'utf8');
    const meta = /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html);
    expect(meta?.[1]).toBe(UI_CSP_META);
    // Every script is a file of the bundle: script-src 'self' allows nothing inline, so none may be.
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\bsrc=/);

    for (const policy of [UI_CSP_HEADER, UI_CSP_META]) {
      const d = directives(policy);
      expect(d.get('default-src')).toEqual(["'none'"]);
      expect(d.get('script-src')).toEqual(["'self'"]);
      expect(d.get('connect-src')).toEqual(["'self'"]);
      expect(d.get('object-src')).toEqual(["'none'"]);
      expect(d.get('base-uri')).toEqual(["'none'"]);
      expect(d.get('img-src')).toEqual(["'self'", 'data:']);
      expect(policy).not.toMatch(/unsafe-eval|\*/);
    }
    expect(directives(UI_CSP_HEADER).get('frame-ancestors')).toEqual(["'none'"]);
  });

  describe('IPC', () => {
    const invoke = () => electron.invokeHandlers.get('almostrec:invoke') as unknown as Invoke;
    const fromApp = () => ({ sender: win.webContents, senderFrame: win.webContents.mainFrame });

    it('has one channel, the typed API, and no other listener', () => {
      expect([...electron.invokeHandlers.keys()]).toEqual(['almostrec:invoke']);
      expect(electron.ipcListeners.size).toBe(0);
    });

    it('serves the app window', async () => {
      const info = await invoke()(fromApp(), 'app.info', {});
      expect(info).toMatchObject({ ok: true, result: { transport: 'ipc', dataDir: home } });
    });

    it('refuses bad input with the envelope of the schema HTTP uses too', async () => {
      for (const bad of BAD_INPUTS) {
        const answer = await invoke()(fromApp(), bad.method, bad.input);
        expect(JSON.parse(JSON.stringify(answer)), bad.what).toEqual(expectedRefusal(bad));
      }
      for (const method of [...UNKNOWN_METHODS, 42, null, { toString: () => 'app.info' }]) {
        const answer = await invoke()(fromApp(), method, {});
        expect(answer, String(method)).toMatchObject({ ok: false, error: { code: 'not_found' } });
      }
    });

    it('refuses every sender that is not the top frame of the app window showing the app', async () => {
      const other = new FakeWebContents();
      other.mainFrame.url = appUrl;
      const foreign = [
        { what: 'a web page in the window', sender: win.webContents, senderFrame: new FakeFrame('https://evil.example/') },
        { what: 'another file in the window', sender: win.webContents, senderFrame: new FakeFrame(pathToFileURL('/etc/passwd').href) },
        { what: 'a subframe of the app page', sender: win.webContents, senderFrame: new FakeFrame(appUrl, win.webContents.mainFrame) },
        { what: 'another web contents', sender: other, senderFrame: other.mainFrame },
        { what: 'a frame already gone', sender: win.webContents, senderFrame: null }
      ];
      for (const { what, ...event } of foreign) {
        expect(await invoke()(event, 'app.info', {}), what).toEqual({
          ok: false,
          error: { code: 'unauthorized', message: 'Refused: this IPC call does not come from the workbench window' }
        });
      }
    });
  });
});

describe('Electron preload bundle (out/preload/index.js)', () => {
  let preload: FakeElectron;
  beforeAll(() => {
    preload = createFakeElectron();
    const restore = interceptElectron(preload);
    try {
      createRequire(__filename)(out('preload', 'index.js'));
    } finally {
      restore();
    }
  });

  it('requires nothing but electron (a sandboxed preload gets no Node)', () => {
    const requires = [...readFileSync(out('preload', 'index.js'), 'utf8').matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    expect(requires).toEqual(['electron']);
  });

  it('exposes exactly invoke and onEvent, on the two API channels', async () => {
    expect(preload.exposed.map((e) => e.key)).toEqual(['almostrec']);
    const bridge = preload.exposed[0].api as Record<string, unknown>;
    expect(Object.keys(bridge).sort()).toEqual(['invoke', 'onEvent']);
    const { invoke, onEvent } = bridge as {
      invoke: (m: string, i: unknown) => Promise<unknown>;
      onEvent: (l: (e: unknown) => void) => () => void;
    };
    await invoke('runs.get', { runId: 1 });
    expect(preload.rendererInvokes).toEqual([{ channel: 'almostrec:invoke', args: ['runs.get', { runId: 1 }] }]);

    // The renderer's listener gets the payload only, never Electron's event (whose sender is ipcRenderer).
    const heard: unknown[][] = [];
    const unsubscribe = onEvent((...args: unknown[]) => heard.push(args));
    const listeners = preload.rendererListeners.get('almostrec:event') ?? [];
    expect(listeners).toHaveLength(1);
    const payload = { type: 'log', jobId: 'j', message: 'm' };
    (listeners[0] as (...a: unknown[]) => void)({ sender: { send: 'ipcRenderer itself' } }, payload);
    expect(heard).toEqual([[payload]]);
    unsubscribe();
    expect(preload.rendererListeners.get('almostrec:event')).toEqual([]);
    expect([...preload.rendererListeners.keys()]).toEqual(['almostrec:event']);
  });
});
