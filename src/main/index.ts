// Electron shell: one window, the API over IPC, nothing else. All work happens in WorkbenchService and
// its worker threads, and the security rules live in electron-hardening.ts; this file only wires them,
// because Electron cannot be installed on every machine.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, ipcMain, session } from 'electron';
import { IPC_EVENT_CHANNEL } from '../shared/ipc';
import { appVersion, builtPaths, catalogPath, defaultDataDir } from './app-paths';
import {
  handleApiOverIpc,
  hardenSession,
  ipcSenderCheck,
  isAppPage,
  lockDownWebContents,
  secureWebPreferences,
  type AppRequestCheck
} from './electron-hardening';
import { WorkbenchService } from './services/workbench-service';

const paths = builtPaths(__dirname);
// Packaged (electron-builder.yml), the embedded dataset is an extraResource next to app.asar:
// <resources>/datasets/ml-latest-small, where resolveEmbeddedDatasetDir looks when this is set.
if (app.isPackaged && !process.env.ALMOSTREC_RESOURCES) process.env.ALMOSTREC_RESOURCES = process.resourcesPath;
/** The page the window shows: electron-vite's dev server while developing, else the built file. */
const appUrl = process.env.ELECTRON_RENDERER_URL ?? pathToFileURL(join(paths.rendererDir, 'index.html')).href;
/** The web contents of the app's own windows, the only ones whose IPC calls are served. */
const appContents = new Set<number>();
const isAppRequest: AppRequestCheck = (contents, url) =>
  contents !== null && appContents.has(contents.id) && url !== undefined && isAppPage(url, appUrl);

let service: WorkbenchService | null = null;

// Registered before any window exists, so no web contents is ever without its guards.
app.on('web-contents-created', (_event, contents) => lockDownWebContents(contents));

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 1024,
    minHeight: 640,
    title: 'ALMOSTREC Workbench',
    show: false,
    webPreferences: secureWebPreferences(paths.preloadPath)
  });
  const contentsId = win.webContents.id;
  appContents.add(contentsId);
  win.webContents.once('destroyed', () => appContents.delete(contentsId));
  win.once('ready-to-show', () => win.show());
  void win.loadURL(appUrl);
  return win;
}

async function start(): Promise<void> {
  await app.whenReady();
  hardenSession(session.defaultSession, isAppRequest);
  const dataDir = defaultDataDir();
  mkdirSync(dataDir, { recursive: true });
  service = new WorkbenchService({
    dataDir,
    dbPath: catalogPath(dataDir),
    workerPath: paths.workerPath,
    transport: 'ipc',
    version: appVersion(__dirname)
  });
  await service.init();
  const svc = service;
  handleApiOverIpc(ipcMain, svc, ipcSenderCheck(appUrl, (contents) => appContents.has(contents.id)));
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
