// Helpers of packaging.test.ts: electron-builder.yml read and validated by electron-builder itself (the
// version in package.json), and the files the packaged app needs from node_modules found the way Node finds
// them (each package's dependencies, nearest node_modules first), independently of electron-builder.
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';

export const root = join(__dirname, '..', '..');

/** Modules electron-builder itself uses, resolved from its package so the test runs its exact versions. */
export const builderRequire = createRequire(createRequire(join(root, 'package.json')).resolve('electron-builder/package.json'));
export const appBuilderRequire = createRequire(builderRequire.resolve('app-builder-lib/package.json'));

export interface FileSetEntry {
  from: string;
  to?: string;
  filter?: string[];
}
interface PlatformConfig {
  target?: string[];
  icon?: string;
  files?: FilesEntry[];
}
/** A `files` entry as electron-builder normalises it: a pattern, or a set of patterns (filter) from a folder. */
type FilesEntry = string | { from?: string; filter?: string | string[] };

export interface BuilderConfig {
  appId?: string;
  productName?: string;
  directories?: { buildResources?: string; output?: string };
  files?: FilesEntry[];
  extraResources?: FileSetEntry[];
  asar?: boolean;
  asarUnpack?: string[];
  npmRebuild?: boolean;
  linux?: PlatformConfig;
  mac?: PlatformConfig;
  win?: PlatformConfig;
}

/** electron-builder's own reading of the project's configuration, checked against its JSON schema. */
export async function loadBuilderConfig(): Promise<BuilderConfig> {
  const { getConfig, validateConfiguration } = appBuilderRequire('./out/util/config/config') as {
    getConfig(projectDir: string, configPath: string | null, fromOptions: null): Promise<BuilderConfig>;
    validateConfiguration(config: BuilderConfig, logger: { isEnabled: boolean; add(k: string, v: unknown): void }): Promise<void>;
  };
  const config = await getConfig(root, null, null);
  await validateConfiguration(config, { isEnabled: false, add: () => undefined });
  return config;
}

/** electron-builder's glob matcher (minimatch, dot files included, as in its fileMatcher). */
export function globMatcher(pattern: string): (path: string) => boolean {
  const { Minimatch } = appBuilderRequire('minimatch') as { Minimatch: new (p: string, o: object) => { match(p: string): boolean } };
  const m = new Minimatch(pattern, { dot: true });
  return (path) => m.match(path);
}

/** The app-folder patterns of a `files` list (the entries without a `from` of their own). */
export function patternsOf(entries: FilesEntry[] | undefined): string[] {
  return (entries ?? []).flatMap((e) => (typeof e === 'string' ? [e] : e.from === undefined ? [e.filter ?? []].flat() : []));
}

/** The `files` patterns in force for one platform: the top-level ones, then the platform's. */
export function filesFor(config: BuilderConfig, platform: 'linux' | 'mac' | 'win'): string[] {
  return [...patternsOf(config.files), ...patternsOf(config[platform]?.files)];
}

/** Whether a project-relative path survives the exclusions ("!pattern") of a `files` list. */
export function keptBy(patterns: string[]): (path: string) => boolean {
  const excluded = patterns.filter((p) => p.startsWith('!')).map((p) => globMatcher(p.slice(1)));
  return (path) => !excluded.some((m) => m(path));
}

interface PackageJson {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Node's lookup: node_modules/<name> in the requiring package's folder, then in each folder above it. */
function resolvePackageDir(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return null;
  }
}

/**
 * Project-relative folders of every package the app loads at run time: package.json's dependencies and
 * the optional ones installed here, and theirs, transitively. `keep` drops what electron-builder.yml leaves out.
 */
export function productionPackages(keep: (path: string) => boolean): { dirs: string[]; missing: string[] } {
  const found = new Set<string>();
  const missing: string[] = [];
  const visit = (pkgDir: string, isRoot: boolean) => {
    const pkg = readPackage(pkgDir);
    const optional = Object.keys(pkg.optionalDependencies ?? {});
    for (const name of new Set([...Object.keys(pkg.dependencies ?? {}), ...optional])) {
      const dir = resolvePackageDir(name, pkgDir);
      if (!dir) {
        if (!optional.includes(name)) missing.push(`${name} (required by ${isRoot ? 'the app' : pkg.name})`);
        continue;
      }
      const rel = relative(root, dir).split(sep).join('/');
      if (found.has(rel) || !keep(`${rel}/package.json`)) continue;
      found.add(rel);
      visit(dir, false);
    }
  };
  visit(root, true);
  return { dirs: [...found].sort(), missing };
}

/** Every file under a project-relative folder, project-relative with forward slashes (own node_modules excluded). */
export function filesUnder(relDir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(child);
      } else if (entry.isFile() || (entry.isSymbolicLink() && statSync(join(root, child)).isFile())) out.push(child);
    }
  };
  walk(relDir);
  return out;
}

/** Whether node_modules is a link (a git worktree sharing another checkout's install). */
export function nodeModulesIsLink(): boolean {
  return lstatSync(join(root, 'node_modules')).isSymbolicLink();
}
