// A recording stand-in for the `electron` module, for loading the built main and preload bundles in plain
// Node (Electron's binary cannot be installed on every machine). It does what Electron documents and the
// bundles rely on: `app` is an event emitter whose whenReady resolves, a new BrowserWindow creates a web
// contents and emits the app's 'web-contents-created' for it, and every registration (handlers, listeners,
// web preferences) is kept for the test to inspect and call.
import { EventEmitter } from 'node:events';
import Module from 'node:module';

type Handler = (...args: never[]) => unknown;

export class FakeFrame {
  constructor(
    public url: string,
    public parent: FakeFrame | null = null
  ) {}
}

let nextContentsId = 1;

export class FakeWebContents extends EventEmitter {
  readonly id = nextContentsId++;
  readonly mainFrame = new FakeFrame('about:blank');
  windowOpenHandler: ((details: { url: string }) => { action: string }) | null = null;
  readonly sent: Array<{ channel: string; payload: unknown }> = [];

  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
    this.windowOpenHandler = handler;
  }

  send(channel: string, payload: unknown): void {
    this.sent.push({ channel, payload });
  }
}

export interface FakeElectron {
  module: Record<string, unknown>;
  app: EventEmitter & { quitCalls: number; exitCodes: number[] };
  windows: FakeBrowserWindowLike[];
  /** ipcMain.handle registrations by channel; ipcMain.on listeners by channel. */
  invokeHandlers: Map<string, Handler>;
  ipcListeners: Map<string, Handler[]>;
  session: {
    permissionRequest: Handler | null;
    permissionCheck: Handler | null;
    devicePermission: Handler | null;
    headersReceived: Handler | null;
  };
  /** contextBridge.exposeInMainWorld calls (preload). */
  exposed: Array<{ key: string; api: unknown }>;
  /** ipcRenderer.invoke calls and .on listeners (preload). */
  rendererInvokes: Array<{ channel: string; args: unknown[] }>;
  rendererListeners: Map<string, Handler[]>;
}

export interface FakeBrowserWindowLike extends EventEmitter {
  options: { webPreferences?: Record<string, unknown> } & Record<string, unknown>;
  webContents: FakeWebContents;
  loadedUrl: string | null;
}

export function createFakeElectron(): FakeElectron {
  const app = Object.assign(new EventEmitter(), { quitCalls: 0, exitCodes: [] as number[] });
  const windows: FakeBrowserWindowLike[] = [];
  const invokeHandlers = new Map<string, Handler>();
  const ipcListeners = new Map<string, Handler[]>();
  const rendererListeners = new Map<string, Handler[]>();
  const fake: FakeElectron = {
    module: {},
    app,
    windows,
    invokeHandlers,
    ipcListeners,
    session: { permissionRequest: null, permissionCheck: null, devicePermission: null, headersReceived: null },
    exposed: [],
    rendererInvokes: [],
    rendererListeners
  };

  class BrowserWindow extends EventEmitter implements FakeBrowserWindowLike {
    readonly webContents = new FakeWebContents();
    loadedUrl: string | null = null;
    constructor(readonly options: FakeBrowserWindowLike['options']) {
      super();
      windows.push(this);
      app.emit('web-contents-created', { preventDefault() {} }, this.webContents);
    }
    static getAllWindows(): BrowserWindow[] {
      return windows as BrowserWindow[];
    }
    static fromWebContents(contents: FakeWebContents): BrowserWindow | null {
      return (windows.find((w) => w.webContents === contents) as BrowserWindow | undefined) ?? null;
    }
    loadURL(url: string): Promise<void> {
      this.loadedUrl = url;
      this.webContents.mainFrame.url = url;
      return Promise.resolve();
    }
    loadFile(path: string): Promise<void> {
      return this.loadURL(`file://${path}`);
    }
    show(): void {}
  }

  const appApi = Object.assign(app, {
    whenReady: () => Promise.resolve(),
    quit: () => {
      app.quitCalls++;
    },
    exit: (code: number) => {
      app.exitCodes.push(code);
    }
  });

  fake.module = {
    app: appApi,
    BrowserWindow,
    ipcMain: {
      handle: (channel: string, handler: Handler) => {
        if (invokeHandlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
        invokeHandlers.set(channel, handler);
      },
      on: (channel: string, listener: Handler) => {
        ipcListeners.set(channel, [...(ipcListeners.get(channel) ?? []), listener]);
      }
    },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (h: Handler) => (fake.session.permissionRequest = h),
        setPermissionCheckHandler: (h: Handler) => (fake.session.permissionCheck = h),
        setDevicePermissionHandler: (h: Handler) => (fake.session.devicePermission = h),
        webRequest: { onHeadersReceived: (h: Handler) => (fake.session.headersReceived = h) }
      }
    },
    contextBridge: {
      exposeInMainWorld: (key: string, api: unknown) => fake.exposed.push({ key, api })
    },
    ipcRenderer: {
      invoke: (channel: string, ...args: unknown[]) => {
        fake.rendererInvokes.push({ channel, args });
        return Promise.resolve({ ok: true, result: null });
      },
      on: (channel: string, listener: Handler) => {
        rendererListeners.set(channel, [...(rendererListeners.get(channel) ?? []), listener]);
      },
      removeListener: (channel: string, listener: Handler) => {
        rendererListeners.set(channel, (rendererListeners.get(channel) ?? []).filter((l) => l !== listener));
      }
    }
  };
  return fake;
}

type ModuleLoad = (request: string, parent: unknown, isMain: boolean) => unknown;

/** Makes `require('electron')` answer `fake` until the returned function is called. */
export function interceptElectron(fake: FakeElectron): () => void {
  const mod = Module as unknown as { _load: ModuleLoad };
  const original = mod._load;
  mod._load = function (request, parent, isMain) {
    if (request === 'electron') return fake.module;
    return original.call(this, request, parent, isMain);
  };
  return () => {
    mod._load = original;
  };
}
