// Electron shell: one window, the API over IPC, nothing else. All work happens in WorkbenchService and
// its worker threads; this file stays thin because Electron cannot be installed on every machine.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { app, BrowserWindow, ipcMain, session, shell } from 'electron';
import { IPC_EVENT_CHANNEL, IPC_INVOKE_CHANNEL } from '../shared/ipc';
import { appVersion, builtPaths, catalogPath, defaultDataDir } from './app-paths';
import { WorkbenchService } from './services/workbench-service';

const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'";

let service: WorkbenchService | null = null;

function createWindow(): BrowserWindow {
  const paths = builtPaths(__dirname);
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 1024,
    minHeight: 640,
    title: 'ALMOSTREC Workbench',
    show: false,
    webPreferences: {
      preload: paths.preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true
    }
  });
  win.once('ready-to-show', () => win.show());
  // Links open in the system browser, never inside the app window.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:/.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (e) => e.preventDefault());
  if (process.env.ELECTRON_RENDERER_URL) void win.loadURL(process.env.ELECTRON_RENDERER_URL);
  else void win.loadFile(join(paths.rendererDir, 'index.html'));
  return win;
}

async function start(): Promise<void> {
  await app.whenReady();
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CSP] } });
  });
  const dataDir = defaultDataDir();
  mkdirSync(dataDir, { recursive: true });
  service = new WorkbenchService({
    dataDir,
    dbPath: catalogPath(dataDir),
    workerPath: builtPaths(__dirname).workerPath,
    transport: 'ipc',
    version: appVersion(__dirname)
  });
  await service.init();
  const svc = service;
  ipcMain.handle(IPC_INVOKE_CHANNEL, (_event, method: unknown, input: unknown) =>
    svc.handle(typeof method === 'string' ? method : '', input)
  );
  svc.onEvent((e) => {
    for (const w of BrowserWindow.getAllWindows()) w.webContents.send(IPC_EVENT_CHANNEL, e);
  });
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
}

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

let quitting = false;
app.on('before-quit', (e) => {
  if (quitting || !service) return;
  e.preventDefault();
  quitting = true;
  void service.close().finally(() => app.quit());
});

start().catch((err: unknown) => {
  console.error(err);
  app.exit(1);
});
