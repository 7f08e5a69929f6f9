// What keeps the Electron window a sealed view of the API: the window's web preferences, the session's
// permission and CSP rules, the guards every web contents gets, and the IPC gate. Each takes the Electron
// objects it works on, so the shell (index.ts) only wires them and the built bundle can be checked with a
// recording stand-in for `electron` (Electron itself cannot be installed on every machine).
import { fileURLToPath } from 'node:url';
import type { IpcMain, IpcMainInvokeEvent, Session, WebContents, WebPreferences } from 'electron';
import { UI_CSP_HEADER } from '../shared/csp';
import { IPC_INVOKE_CHANNEL, type Envelope } from '../shared/ipc';

/** The renderer runs as a web page: no Node, its own JS world, Chromium's sandbox and same-origin rules. */
export function secureWebPreferences(preloadPath: string): WebPreferences {
  return {
    preload: preloadPath,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    experimentalFeatures: false
  };
}

/**
 * The one permission the UI uses: writing text to the clipboard (Table 2's "Copy LaTeX"), sanitized and
 * write-only, for the app's own page. Everything else (camera, notifications, USB, clipboard read, …) and
 * any request from another page is refused.
 */
const UI_PERMISSIONS: ReadonlySet<string> = new Set(['clipboard-sanitized-write']);

/** Whether a permission request comes from the app's page in one of its windows. */
export type AppRequestCheck = (contents: WebContents | null, requestingUrl: string | undefined) => boolean;

export function hardenSession(session: Session, isAppRequest: AppRequestCheck): void {
  const allowed = (contents: WebContents | null, permission: string, url: string | undefined) =>
    UI_PERMISSIONS.has(permission) && isAppRequest(contents, url);
  session.setPermissionRequestHandler((contents, permission, callback, details) => callback(allowed(contents, permission, details.requestingUrl)));
  session.setPermissionCheckHandler((contents, permission, _origin, details) => allowed(contents, permission, details.requestingUrl));
  session.setDevicePermissionHandler(() => false);
  // Covers pages served over HTTP (the dev server); the built file:// page carries the same policy in its <meta>.
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [UI_CSP_HEADER] } });
  });
}

/** For every web contents the app creates: it never leaves the page it was loaded with, nor opens another. */
export function lockDownWebContents(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/** Whether a frame's address is the app's page: the built index.html file, or the dev server's origin. */
export function isAppPage(frameUrl: string, appUrl: string): boolean {
  let frame: URL;
  let app: URL;
  try {
    frame = new URL(frameUrl);
    app = new URL(appUrl);
  } catch {
    return false;
  }
  if (app.protocol === 'file:') return frame.protocol === 'file:' && fileURLToPath(frame) === fileURLToPath(app);
  return frame.origin === app.origin;
}

/**
 * An IPC call is trusted only from the top frame of one of the app's own windows showing the app's page:
 * not from a subframe, another web contents, or a page the window was somehow taken to.
 */
export function ipcSenderCheck(appUrl: string, isAppContents: (contents: WebContents) => boolean): (event: IpcMainInvokeEvent) => boolean {
  return (event) => {
    const frame = event.senderFrame;
    return frame !== null && frame.parent === null && isAppContents(event.sender) && isAppPage(frame.url, appUrl);
  };
}

export interface IpcApi {
  handle(method: string, input: unknown): Promise<Envelope<unknown>>;
}

/** The one IPC channel: the sender is checked here; the input is validated by the API (the same schema as HTTP). */
export function handleApiOverIpc(ipcMain: IpcMain, api: IpcApi, isTrustedSender: (event: IpcMainInvokeEvent) => boolean): void {
  ipcMain.handle(IPC_INVOKE_CHANNEL, async (event, method: unknown, input: unknown): Promise<Envelope<unknown>> => {
    if (!isTrustedSender(event)) {
      return { ok: false, error: { code: 'unauthorized', message: 'Refused: this IPC call does not come from the workbench window' } };
    }
    return api.handle(typeof method === 'string' ? method : '', input);
  });
}
