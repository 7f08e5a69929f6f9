// `npm start`: Electron where its binary is installed, otherwise browser mode (same UI, served on
// 127.0.0.1 and opened in the system Chromium, or printed as a URL).
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const forceBrowser = process.argv.includes('--browser') || process.env.ALMOSTREC_BROWSER === '1';
const passThrough = process.argv.slice(2).filter((a) => a !== '--browser');

/** Path of the Electron binary, or null when the npm package is there without its binary. */
function electronBinary() {
  try {
    return require('electron'); // the package's index resolves to the binary path, or throws
  } catch {
    return null;
  }
}

function tryInstallElectron() {
  // Electron's own installer downloads the binary; it fails without network access (and needs Node ≥ 22.12
  // for Electron ≥ 45). Give it one bounded try, then fall back.
  const installer = join(root, 'node_modules', 'electron', 'install.js');
  const r = spawnSync(process.execPath, [installer], { cwd: root, stdio: 'ignore', timeout: 60_000 });
  return r.status === 0 ? electronBinary() : null;
}

function run(cmd, args, env = process.env) {
  const child = spawn(cmd, args, { cwd: root, stdio: 'inherit', env });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code) => process.exit(code ?? 0));
}

let electron = forceBrowser ? null : electronBinary();
if (!electron && !forceBrowser && process.env.ALMOSTREC_SKIP_ELECTRON_INSTALL !== '1') {
  console.log('Electron binary not installed; trying its installer once…');
  electron = tryInstallElectron();
}
if (electron) {
  run(electron, [root, ...passThrough]);
} else {
  if (!forceBrowser) console.log('Electron is not available here: starting browser mode.');
  run(process.execPath, [join(root, 'out', 'main', 'browser.js'), ...passThrough]);
}
