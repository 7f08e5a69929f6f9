// `npm run dist [-- electron-builder args]`: packages the built app (out/) with electron-builder.yml.
// Two things electron-builder does not do by itself, both about better-sqlite3, the one addon compiled
// against a runtime's ABI (onnxruntime-node is N-API and ships prebuilt):
// - npm hands its config to scripts as npm_config_* variables, and a `nodedir` there (Debian's npmrc sets
//   nodedir=/usr) makes node-gyp compile against the system Node's headers while @electron/rebuild believes
//   it built for Electron: the packaged app would then fail to open its catalog. Dropped for the rebuild.
// - @electron/rebuild rebuilds node_modules in place for Electron; afterwards the CLI, browser mode and the
//   tests (plain Node) could not load it. `npm rebuild better-sqlite3` gives Node its build back, also when
//   packaging failed half-way.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const builderCli = join(dirname(require.resolve('electron-builder/package.json')), 'cli.js');
const args = process.argv.slice(2);

const builderEnv = { ...process.env };
for (const key of Object.keys(builderEnv)) if (key.toLowerCase() === 'npm_config_nodedir') delete builderEnv[key];

const built = spawnSync(process.execPath, [builderCli, ...args], { cwd: root, stdio: 'inherit', env: builderEnv });
const skippedRebuild = args.includes('--config.npmRebuild=false');
let restored = { status: 0 };
if (!skippedRebuild) {
  console.log('Rebuilding better-sqlite3 for Node (the CLI, browser mode and the tests)…');
  restored = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['rebuild', 'better-sqlite3'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (restored.status !== 0) console.error('npm rebuild better-sqlite3 failed: run it by hand before using the CLI or the tests');
}
process.exit(built.status !== 0 ? (built.status ?? 1) : (restored.status ?? 1));
