// Where the app keeps its catalog, checkpoints and exports, and where its built parts live. Electron,
// browser mode and the CLI use the same data folder, so they see the same catalog.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const APP_ID = 'almostrec-workbench';

export function defaultDataDir(): string {
  if (process.env.ALMOSTREC_HOME) return resolve(process.env.ALMOSTREC_HOME);
  if (process.platform === 'win32') return join(process.env.APPDATA ?? join(homedir(), 'AppData', 'Roaming'), APP_ID);
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', APP_ID);
  return join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), APP_ID);
}

export function catalogPath(dataDir: string): string {
  return join(dataDir, 'catalog.sqlite');
}

/**
 * Built entries live side by side in out/main; the renderer in out/renderer. Entry files pass their own
 * __dirname: shared modules are bundled into out/main/chunks, where __dirname would be one level too deep.
 */
export function builtPaths(mainDir: string): { workerPath: string; rendererDir: string; preloadPath: string } {
  return {
    workerPath: join(mainDir, 'job-worker.js'),
    rendererDir: join(mainDir, '..', 'renderer'),
    preloadPath: join(mainDir, '..', 'preload', 'index.js')
  };
}

export function appVersion(mainDir: string): string {
  for (const candidate of [join(mainDir, '..', '..', 'package.json'), join(mainDir, '..', 'package.json')]) {
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'almostrec-workbench' && pkg.version) return pkg.version;
    }
  }
  return '0.0.0';
}
