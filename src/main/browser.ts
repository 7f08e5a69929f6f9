// Browser mode: the workbench without Electron. Starts the API service and the loopback HTTP/WebSocket
// server, then opens the system Chromium in app mode when a display is available, or prints the URL.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { appVersion, builtPaths, catalogPath, defaultDataDir } from './app-paths';
import { startHttpServer } from './server/http-server';
import { WorkbenchService } from './services/workbench-service';

interface BrowserArgs {
  port?: number;
  open: boolean;
  autoImport: boolean;
}

function parseArgs(argv: string[]): BrowserArgs {
  const args: BrowserArgs = { open: true, autoImport: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-open') args.open = false;
    else if (a === '--no-import') args.autoImport = false;
    else if (a === '--port') args.port = Number(argv[++i]);
    else if (a.startsWith('--port=')) args.port = Number(a.slice('--port='.length));
    else throw new Error(`Unknown option ${a} (expected --port N, --no-open, --no-import)`);
  }
  if (args.port !== undefined && !(Number.isInteger(args.port) && args.port >= 0 && args.port < 65536)) {
    throw new Error('--port must be an integer between 0 and 65535');
  }
  return args;
}

function findChromium(): string | null {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

function openInChromium(url: string, dataDir: string): boolean {
  const hasDisplay = process.platform !== 'linux' || !!process.env.DISPLAY || !!process.env.WAYLAND_DISPLAY;
  const chromium = findChromium();
  if (!hasDisplay || !chromium) return false;
  const flags = [
    `--app=${url}`,
    `--user-data-dir=${join(dataDir, 'chromium-profile')}`,
    '--window-size=1280,800',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync'
  ];
  if (process.getuid?.() === 0) flags.push('--no-sandbox');
  const child = spawn(chromium, flags, { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
  return true;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dataDir = defaultDataDir();
  mkdirSync(dataDir, { recursive: true });
  const paths = builtPaths(__dirname);
  const service = new WorkbenchService({
    dataDir,
    dbPath: catalogPath(dataDir),
    workerPath: paths.workerPath,
    transport: 'http',
    version: appVersion(__dirname),
    autoImport: args.autoImport
  });
  await service.init();
  const server = await startHttpServer(service, { rendererDir: paths.rendererDir, port: args.port });
  console.log(`ALMOSTREC Workbench (browser mode) — data folder ${dataDir}`);
  console.log(`Open: ${server.launchUrl}`);
  if (args.open && openInChromium(server.launchUrl, dataDir)) console.log('Opened in Chromium (app mode).');

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await server.close();
    await service.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

main().catch((err: unknown) => {
  console.error(`almostrec: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
