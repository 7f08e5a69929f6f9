// Issue 15, item 1: the packaging inputs, checked without Electron's binary. electron-builder.yml is read
// and schema-checked by electron-builder itself; its asarUnpack globs are matched against the native files
// actually installed; every `files` entry must exist after `npm run build`; the icons must be what
// `npm run icons` makes of build/icon.svg. Then electron-builder packages the app for real (`--dir`, with a
// stand-in for the Electron folder it would download) and the archive it wrote is inspected.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveEmbeddedDatasetDir } from '../../src/core/importers/embedded-dataset';
import { createFakeElectron, interceptElectron } from './fake-electron';
import {
  appBuilderRequire,
  builderRequire,
  filesFor,
  filesUnder,
  globMatcher,
  keptBy,
  loadBuilderConfig,
  nodeModulesIsLink,
  patternsOf,
  productionPackages,
  root,
  type BuilderConfig
} from './packaging-inputs';

/** Code the OS loads itself (dlopen / LoadLibrary), which it cannot do from inside an asar archive. */
const NATIVE = /\.(node|dylib|dll|so(\.\d+)*)$/;
const PLATFORMS = ['linux', 'mac', 'win'] as const;
/** onnxruntime-node's folder name for each electron-builder platform, and the arch each target here uses. */
const ORT_DIR = { linux: 'linux/x64', mac: 'darwin/arm64', win: 'win32/x64' } as const;
const ORT_BIN = 'node_modules/onnxruntime-node/bin/napi-v6';

let config: BuilderConfig;

beforeAll(async () => {
  config = await loadBuilderConfig();
});

describe('electron-builder.yml', () => {
  it('validates against electron-builder’s schema and names the four installers with their icons', () => {
    expect(config.appId).toBeTruthy();
    expect(config.linux?.target).toEqual(['AppImage', 'deb']);
    expect(config.mac?.target).toEqual(['dmg']);
    expect(config.win?.target).toEqual(['nsis']);
    expect(config.asar).toBe(true);
    const buildDir = join(root, config.directories?.buildResources ?? 'build');
    expect(existsSync(join(root, config.mac!.icon!))).toBe(true);
    expect(existsSync(join(root, config.win!.icon!))).toBe(true);
    const linuxIcons = readdirSync(join(root, config.linux!.icon!));
    for (const size of [16, 32, 48, 64, 128, 256, 512, 1024]) expect(linuxIcons).toContain(`${size}x${size}.png`);
    expect(buildDir).toBe(join(root, 'build'));
  });

  it('unpacks every native binary the app ships, on each platform, and no glob is stale', () => {
    const unpack = (config.asarUnpack ?? []).map((p) => ({ pattern: p, match: globMatcher(p) }));
    const used = new Set<string>();
    for (const platform of PLATFORMS) {
      const keep = keptBy(filesFor(config, platform));
      const { dirs, missing } = productionPackages(keep);
      expect(missing, `${platform}: dependencies not installed`).toEqual([]);
      const shipped = dirs.flatMap(filesUnder).filter(keep);
      const native = shipped.filter((f) => NATIVE.test(f));
      const wasm = shipped.filter((f) => f.endsWith('.wasm') && f.includes('tfjs-backend-wasm'));
      expect(native.some((f) => f.endsWith('better_sqlite3.node')), `${platform}: better-sqlite3's addon`).toBe(true);
      expect(native.filter((f) => f.startsWith(`${ORT_BIN}/${ORT_DIR[platform]}/`)).length, `${platform}: onnxruntime binding + library`).toBeGreaterThanOrEqual(2);
      // Only this platform's onnxruntime binaries travel (the package ships all of them).
      const otherOs = native.filter((f) => f.startsWith(`${ORT_BIN}/`) && !f.startsWith(`${ORT_BIN}/${ORT_DIR[platform].split('/')[0]}/`));
      expect(otherOs, `${platform}: other platforms' onnxruntime binaries`).toEqual([]);
      expect(wasm.length, `${platform}: tfjs wasm binaries`).toBe(6);
      for (const file of [...native, ...wasm]) {
        const hits = unpack.filter((u) => u.match(file));
        expect(hits.length, `${platform}: ${file} is not unpacked by any asarUnpack glob`).toBeGreaterThan(0);
        for (const h of hits) used.add(h.pattern);
      }
    }
    expect([...used].sort()).toEqual([...(config.asarUnpack ?? [])].sort());
  });

  it('finds every `files` entry and extra resource after a build', () => {
    const out = join(root, 'out');
    if (!existsSync(join(out, 'main', 'index.js'))) throw new Error('out/ is missing: run "npm run build" before the safety tests');
    const builtFiles = filesUnder('out');
    const patterns = patternsOf(config.files);
    for (const pattern of patterns.filter((p) => !p.startsWith('!'))) {
      expect(builtFiles.filter(globMatcher(pattern)).length, `files entry ${pattern} matches nothing`).toBeGreaterThan(0);
    }
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string };
    const entries = [pkg.main, 'out/main/job-worker.js', 'out/main/train-replica.js', 'out/preload/index.js', 'out/renderer/index.html'];
    const kept = keptBy(patterns);
    for (const entry of entries) {
      expect(builtFiles, `${entry} is not built`).toContain(entry);
      expect(kept(entry) && patterns.some((p) => !p.startsWith('!') && globMatcher(p)(entry)), `${entry} is not packaged`).toBe(true);
    }
    for (const resource of config.extraResources ?? []) expect(existsSync(join(root, resource.from)), resource.from).toBe(true);
  });

  it('ships icons that npm run icons regenerates byte for byte from build/icon.svg', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'almostrec-icons-'));
    try {
      const r = spawnSync(process.execPath, [join(root, 'scripts', 'make-icons.mjs'), '--out', tmp], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const generated = filesUnder('build').filter((f) => !f.endsWith('.svg'));
      expect(generated.length).toBe(11);
      for (const f of generated) {
        const fresh = readFileSync(join(tmp, f.slice('build/'.length)));
        expect(fresh.equals(readFileSync(join(root, f))), `${f} differs from what build/icon.svg renders to`).toBe(true);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('electron-builder --dir with a stand-in Electron folder', () => {
  interface Asar {
    listPackage(archive: string, options: object): string[];
    statFile(archive: string, file: string): { unpacked?: boolean };
    extractFile(archive: string, file: string): Buffer;
  }
  const asar = appBuilderRequire('@electron/asar') as Asar;
  let work: string;
  let resources: string;
  let archive: string;
  let listed: Set<string>;
  let log = '';

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'almostrec-dist-'));
    // electron-builder copies this folder as the app's Electron and renames its `electron` executable; its
    // contents are not looked at, and nothing is downloaded. npmRebuild off: never rebuild node_modules here.
    const fakeDist = join(work, 'electron-dist');
    mkdirSync(fakeDist);
    writeFileSync(join(fakeDist, 'electron'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const cli = join(builderRequire.resolve('electron-builder/package.json'), '..', 'cli.js');
    const r = spawnSync(
      process.execPath,
      [cli, '--linux', 'dir', '--x64', '--config.npmRebuild=false', `--config.electronDist=${fakeDist}`, `--config.directories.output=${join(work, 'dist')}`],
      { cwd: root, encoding: 'utf8', env: { ...process.env, CI: 'true' }, timeout: 240_000 }
    );
    log = `${r.stdout}\n${r.stderr}`;
    if (r.status !== 0) throw new Error(`electron-builder --dir failed (${r.status}):\n${log}`);
    resources = join(work, 'dist', 'linux-unpacked', 'resources');
    archive = join(resources, 'app.asar');
    listed = new Set(asar.listPackage(archive, {}).map((p) => p.replace(/\\/g, '/').replace(/^\//, '')));
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs the built app with its entry points', () => {
    const pkg = JSON.parse(asar.extractFile(archive, 'package.json').toString()) as { main: string };
    for (const entry of [pkg.main, 'out/main/job-worker.js', 'out/main/train-replica.js', 'out/preload/index.js', 'out/renderer/index.html']) {
      expect(listed.has(entry), `${entry} not in app.asar`).toBe(true);
    }
    expect([...listed].filter((p) => /^(build|src|test|resources|scripts)\//.test(p))).toEqual([]);
  });

  it('puts every native binary in app.asar.unpacked, the Linux onnxruntime library beside its binding', () => {
    const native = [...listed].filter((p) => NATIVE.test(p) || (p.endsWith('.wasm') && p.includes('tfjs-backend-wasm')));
    expect(native.length).toBeGreaterThan(0);
    for (const file of native) {
      expect(asar.statFile(archive, file).unpacked, `${file} is inside app.asar`).toBe(true);
      expect(existsSync(join(resources, 'app.asar.unpacked', file)), `${file} missing from app.asar.unpacked`).toBe(true);
    }
    expect(native).toContain('node_modules/better-sqlite3/build/Release/better_sqlite3.node');
    expect(native).toContain(`${ORT_BIN}/linux/x64/onnxruntime_binding.node`);
    expect(native).toContain(`${ORT_BIN}/linux/x64/libonnxruntime.so.1`);
    expect(native.filter((p) => p.includes('/darwin/') || p.includes('/win32/'))).toEqual([]);
  });

  it('ships the embedded dataset next to app.asar, where the packaged app looks for it', () => {
    const source = join(root, 'resources', 'datasets', 'ml-latest-small');
    const shipped = join(resources, 'datasets', 'ml-latest-small');
    expect(readdirSync(join(shipped, 'posters')).length).toBe(readdirSync(join(source, 'posters')).length);
    // src/main/index.ts sets ALMOSTREC_RESOURCES = process.resourcesPath when packaged; the main process
    // resolves the dataset from inside app.asar.
    expect(resolveEmbeddedDatasetDir(join(archive, 'out', 'main'), { ALMOSTREC_RESOURCES: resources })).toBe(shipped);
  });

  it('sets ALMOSTREC_RESOURCES to process.resourcesPath when the built main process runs packaged', async () => {
    // out/main/index.js under the recording stand-in for `electron` (as transport-electron.test.ts), told
    // it is packaged: the line that makes the dataset above findable must have run before the window opens.
    const electron = createFakeElectron();
    Object.assign(electron.app, { isPackaged: true });
    Object.assign(process, { resourcesPath: resources });
    const home = mkdtempSync(join(tmpdir(), 'almostrec-packaged-'));
    const saved = { home: process.env.ALMOSTREC_HOME, resources: process.env.ALMOSTREC_RESOURCES };
    process.env.ALMOSTREC_HOME = home;
    delete process.env.ALMOSTREC_RESOURCES;
    const restoreRequire = interceptElectron(electron);
    try {
      createRequire(__filename)(join(root, 'out', 'main', 'index.js'));
      await expect.poll(() => electron.windows.length + electron.app.exitCodes.length, { timeout: 60_000 }).toBeGreaterThan(0);
      expect(electron.app.exitCodes).toEqual([]);
      expect(process.env.ALMOSTREC_RESOURCES).toBe(resources);
    } finally {
      // Quit as a user would: the shell closes the service (and its first-start import) before it lets go.
      electron.app.emit('before-quit', { preventDefault: () => undefined });
      await expect.poll(() => electron.app.quitCalls, { timeout: 60_000 }).toBeGreaterThan(0);
      restoreRequire();
      process.env.ALMOSTREC_HOME = saved.home;
      if (saved.resources === undefined) delete process.env.ALMOSTREC_RESOURCES;
      else process.env.ALMOSTREC_RESOURCES = saved.resources;
      rmSync(home, { recursive: true, force: true });
    }
  });

  // A worktree's linked node_modules makes `npm ls`, which electron-builder asks for the dependency tree,
  // report every hoisted transitive dependency as missing, so they are left out of the archive; in a
  // regular checkout (CI's fresh clone) the packed tree must be complete.
  const linked = nodeModulesIsLink();
  if (linked) console.log('packaging.test: node_modules is a link (git worktree): the packed-dependencies check is skipped');
  it.skipIf(linked)('packs every dependency where Node will look for it, in a version its dependent accepts', () => {
    // electron-builder rearranges node_modules (it hoists nested packages), so the packed tree is checked
    // on its own terms: from the app's package.json, every dependency resolved as Node would inside it.
    const semver = appBuilderRequire('semver') as { validRange(r: string): string | null; satisfies(v: string, r: string): boolean };
    const readPacked = (dir: string) =>
      JSON.parse(asar.extractFile(archive, dir ? `${dir}/package.json` : 'package.json').toString()) as {
        name: string;
        version: string;
        dependencies?: Record<string, string>;
        optionalDependencies?: Record<string, string>;
      };
    const lookupDirs = (dir: string): string[] => {
      const parts = dir ? dir.split('/') : [];
      const dirs: string[] = [];
      for (let n = parts.length; n >= 0; n--) if (parts[n - 1] !== 'node_modules') dirs.push(parts.slice(0, n).join('/'));
      return dirs;
    };
    const problems: string[] = [];
    const visited = new Set<string>();
    const visit = (dir: string) => {
      if (visited.has(dir)) return;
      visited.add(dir);
      const pkg = readPacked(dir);
      const optional = pkg.optionalDependencies ?? {};
      for (const [name, range] of Object.entries({ ...pkg.dependencies, ...optional })) {
        const found = lookupDirs(dir)
          .map((d) => (d ? `${d}/node_modules/${name}` : `node_modules/${name}`))
          .find((d) => listed.has(`${d}/package.json`));
        if (!found) {
          if (!(name in optional)) problems.push(`${name} (required by ${pkg.name}) is not packed`);
          continue;
        }
        const { version } = readPacked(found);
        if (semver.validRange(range) && !semver.satisfies(version, range)) problems.push(`${found}@${version} does not satisfy ${pkg.name}'s ${range}`);
        visit(found);
      }
    };
    visit('');
    expect(problems, log).toEqual([]);
    expect(visited.size).toBeGreaterThan(20);
  });
});
