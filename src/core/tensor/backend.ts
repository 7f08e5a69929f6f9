// Picks and initialises the tfjs backend: WebGPU on a real (hardware) adapter, native
// TensorFlow (GPU, then CPU) when its optional package is installed, else WebAssembly (SIMD), else the pure-JS cpu backend. Every candidate but
// cpu must first pass the self-test (self-test.ts: one training step equal to the cpu backend's to 1e-4); one
// that fails falls through to the next, its reason kept in BackendInfo.fallbacks. Works in plain Node, a worker_thread,
// and when bundled by electron-vite into out/main/*.js (CommonJS, dependencies external).
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Gradients are registered separately from tfjs-core's ops (the tfjs union package would do it). The file
// exists only as extensionless ESM, which Node cannot load from our CommonJS bundle, so it is imported by
// relative path: vite then bundles it (the externalize-deps rule matches only bare package names). Its
// registrations land in tfjs's global registry, shared with the external tfjs-core.
import '../../../node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import type { BackendInfo } from '../../shared/types';
import { ortAvailable, setCrossEntropyThreads } from './ort-cross-entropy';
import { maxAbsDiff, SELF_TEST_TOLERANCE, selfTestStep } from './self-test';
import { registerWasmKernels } from './wasm-kernels';
import { hardwareAdapterMissing, registerWebGpu, requestedAdapterKind, type WebGpuDevice } from './webgpu-backend';

export type BackendPreference = 'auto' | 'webgpu' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

const PREFERENCES: readonly BackendPreference[] = ['auto', 'webgpu', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];
/**
 * Left out of 'auto' for callers that read synchronously (initBackend's syncReads: the image encoders),
 * since tfjs-webgpu cannot dataSync in Node; every model reads asynchronously and runs on webgpu.
 */
const ASYNC_READS_ONLY: ReadonlySet<BackendPreference> = new Set(['webgpu']);
/** What ALMOSTREC_BACKEND accepts: one backend, forced ("tensorflow" tries the GPU build first). */
const FORCEABLE = ['webgpu', 'tensorflow', 'wasm', 'cpu'] as const;

// A runtime require the bundler cannot see, so the optional native packages are never bundled and a
// missing one is a catchable error instead of a build failure.
const runtimeRequire = createRequire(import.meta.url);

let active: BackendInfo | null = null;
/** The order (backendOrder) `active` was chosen from. */
let chosenFor: string | null = null;

/**
 * Whether the package's native binding (lib/napi-v*\/tfjs_binding.node, fetched by its install script) is on
 * disk. Requiring a package without it registers its kernels and then throws, and a second such package then
 * prints a warning for every kernel registered again.
 */
function nativeBindingPresent(pkg: string): boolean {
  try {
    const lib = join(dirname(runtimeRequire.resolve(`${pkg}/package.json`)), 'lib');
    return existsSync(lib) && readdirSync(lib).some((d) => d.startsWith('napi-v') && existsSync(join(lib, d, 'tfjs_binding.node')));
  } catch {
    return false;
  }
}

function tryNative(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): boolean {
  if (!nativeBindingPresent(pkg)) return false;
  try {
    runtimeRequire(pkg);
  } catch {
    return false;
  }
  return tf.findBackend('tensorflow') != null;
}

async function activate(name: string): Promise<boolean> {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

function wasmDistDir(): string {
  // The package's main file lives in dist/, next to the .wasm binaries.
  return dirname(runtimeRequire.resolve('@tensorflow/tfjs-backend-wasm'));
}

async function initWasm(): Promise<boolean> {
  try {
    wasm.setWasmPaths(join(wasmDistDir(), '/'));
  } catch {
    // resolution failed: fall back to the package's own __dirname-based lookup
  }
  if (!(await activate('wasm'))) return false;
  registerWasmKernels();
  return true;
}

/**
 * The most threads training uses on the CPU backends: a step is cut into this many shards, one per thread
 * (train/replicas.ts), and the cross-entropy's onnxruntime pool gets as many.
 */
export const MAX_TRAINING_THREADS = 2;

/** Threads training uses on the CPU backends: env ALMOSTREC_THREADS, else the machine's cores, at most MAX_TRAINING_THREADS. */
export function computeThreads(requested?: number): number {
  const fromEnv = process.env.ALMOSTREC_THREADS;
  const raw = requested ?? (fromEnv ? Number(fromEnv) : cpus().length);
  if (!Number.isInteger(raw) || raw < 1) throw new Error(`ALMOSTREC_THREADS / threads must be a positive integer, got "${fromEnv ?? requested}"`);
  return Math.min(MAX_TRAINING_THREADS, raw);
}

function describe(name: string, native: 'gpu' | 'cpu' | null, gpu?: WebGpuDevice): BackendInfo {
  if (name === 'webgpu') {
    // One device, one queue: no sharding over threads, and the cross-entropy stays in tfjs (tensor/ops.ts).
    return { name, threads: 1, device: `GPU (WebGPU: ${gpu?.adapter ?? 'adapter unknown'}; ${gpu?.memory ?? 'memory unknown'})`, simd: false };
  }
  if (name === 'tensorflow') {
    return { name, threads: 0, device: native === 'gpu' ? 'GPU (TensorFlow CUDA)' : 'CPU (TensorFlow native)', simd: true };
  }
  // On the CPU backends the cross-entropy over all items runs in onnxruntime when it loads (tensor/ops.ts).
  const ort = ortAvailable() ? ' + onnxruntime' : '';
  if (name === 'wasm') {
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    return { name, threads: computeThreads(), device: (simd ? 'CPU (wasm SIMD' : 'CPU (wasm') + ort + ')', simd };
  }
  return { name, threads: computeThreads(), device: `CPU (JavaScript${ort})`, simd: false };
}

let cpuReference: Float32Array | null = null;

/** The self-test's result on the pure-JS cpu backend, computed once per thread. Leaves cpu active. */
async function referenceStep(): Promise<Float32Array> {
  if (!(await activate('cpu'))) throw new Error('the cpu backend, the self-test reference, did not initialise');
  cpuReference ??= await selfTestStep();
  return cpuReference;
}

/** Runs the self-test on the active backend; a reason when it disagrees with the cpu backend, else null. */
async function selfTestFails(name: string, reference: Float32Array): Promise<string | null> {
  try {
    const diff = maxAbsDiff(await selfTestStep(), reference);
    return diff <= SELF_TEST_TOLERANCE ? null : `${name}: self-test differs from cpu by ${diff.toExponential(2)} (> ${SELF_TEST_TOLERANCE})`;
  } catch (e) {
    return `${name}: self-test failed (${e instanceof Error ? e.message : String(e)})`;
  }
}

/**
 * Makes one backend active, or says why not. `auto`: chosen without being asked for, where webgpu may only
 * be a hardware adapter (the software one is for tests and tiny models, and only when forced).
 */
async function tryChoice(choice: Exclude<BackendPreference, 'auto'>, auto = false): Promise<BackendInfo | string> {
  switch (choice) {
    case 'webgpu': {
      let gpu: WebGpuDevice;
      try {
        const kind = requestedAdapterKind();
        if (auto && kind !== 'hardware') return 'webgpu: auto never picks the software adapter (ALMOSTREC_BACKEND=webgpu uses it)';
        const missing = auto ? hardwareAdapterMissing() : null;
        if (missing) return `webgpu: ${missing}`;
        gpu = await registerWebGpu(kind);
      } catch (e) {
        return `webgpu: ${e instanceof Error ? e.message : String(e)}`;
      }
      return (await activate('webgpu')) ? describe('webgpu', null, gpu) : 'webgpu: the tfjs backend did not initialise';
    }
    case 'tensorflow-gpu':
      if (!tryNative('@tensorflow/tfjs-node-gpu')) return 'tensorflow-gpu: @tensorflow/tfjs-node-gpu is not installed';
      return (await activate('tensorflow')) ? describe('tensorflow', 'gpu') : 'tensorflow-gpu: the tfjs backend did not initialise';
    case 'tensorflow':
      if (!tryNative('@tensorflow/tfjs-node')) return 'tensorflow: @tensorflow/tfjs-node is not installed';
      return (await activate('tensorflow')) ? describe('tensorflow', 'cpu') : 'tensorflow: the tfjs backend did not initialise';
    case 'wasm':
      return (await initWasm()) ? describe('wasm', null) : 'wasm: the wasm backend did not initialise';
    case 'cpu':
      return (await activate('cpu')) ? describe('cpu', null) : 'cpu: the cpu backend did not initialise';
  }
}

/** Activates one backend and self-tests it against cpu: its info, or the reason it is not offered. */
async function tryTested(choice: Exclude<BackendPreference, 'auto'>, auto = false): Promise<BackendInfo | string> {
  const reference = choice === 'cpu' ? null : await referenceStep();
  const found = await tryChoice(choice, auto);
  if (typeof found === 'string' || !reference) return found;
  return (await selfTestFails(found.name, reference)) ?? found;
}

/**
 * The order initBackend tries: env ALMOSTREC_BACKEND forces one (then cpu as the last resort), else `prefer`
 * and below; with `syncReads` (a caller that reads with dataSync) auto leaves out ASYNC_READS_ONLY.
 */
export function backendOrder(prefer: BackendPreference = 'auto', syncReads = false): Exclude<BackendPreference, 'auto'>[] {
  const fromEnv = process.env.ALMOSTREC_BACKEND;
  if (fromEnv) {
    if (!(FORCEABLE as readonly string[]).includes(fromEnv)) throw new Error(`ALMOSTREC_BACKEND="${fromEnv}" is not one of ${FORCEABLE.join(', ')}`);
    const forced: Exclude<BackendPreference, 'auto'>[] = fromEnv === 'tensorflow' ? ['tensorflow-gpu', 'tensorflow'] : [fromEnv as 'webgpu' | 'wasm' | 'cpu'];
    return forced.includes('cpu') ? forced : [...forced, 'cpu'];
  }
  const all = PREFERENCES.slice(1) as Exclude<BackendPreference, 'auto'>[];
  return prefer === 'auto' ? all.filter((b) => !(syncReads && ASYNC_READS_ONLY.has(b))) : all.slice(all.indexOf(prefer));
}

/**
 * Initialise the best available backend that passes the self-test. `prefer` names a starting point; env
 * ALMOSTREC_BACKEND overrides it. With `exact` (replica workers, which must compute what the thread that
 * started them computes) anything but the first choice is an error instead of a fallback. `syncReads`: the
 * caller reads with dataSync, so auto does not pick webgpu (a forced webgpu then fails naming the cause).
 */
export async function initBackend(prefer: BackendPreference = 'auto', opts: { exact?: boolean; syncReads?: boolean } = {}): Promise<BackendInfo> {
  const order = opts.exact && prefer !== 'auto' ? [prefer] : backendOrder(prefer, opts.syncReads);
  // Chosen, not asked for: webgpu only on a hardware adapter.
  const auto = prefer === 'auto' && !process.env.ALMOSTREC_BACKEND;
  // Chosen and self-tested before in this thread for the same order: no second test, whose temporary
  // switch to cpu would change the backend under a computation awaiting in this thread. (Auto and asking for
  // webgpu try the same order, but only the latter may take the software adapter.)
  const key = `${auto ? 'auto:' : ''}${order.join(',')}`;
  if (active && chosenFor === key && (await activate(active.name))) return active;
  const fallbacks: string[] = [];
  for (const choice of order) {
    const found = await tryTested(choice, auto);
    if (typeof found === 'string') {
      fallbacks.push(found);
      continue;
    }
    active = fallbacks.length ? { ...found, fallbacks } : found;
    chosenFor = key;
    setCrossEntropyThreads(computeThreads());
    return active;
  }
  throw new Error('No tfjs backend passed its self-test: ' + fallbacks.join('; '));
}

export interface BackendReport {
  backend: Exclude<BackendPreference, 'auto'>;
  /** The backend's info when it initialised and passed the self-test. */
  info: BackendInfo | null;
  /** Why it is not offered; null when it is. */
  reason: string | null;
}

/**
 * Every backend, each initialised and self-tested (for `almostrec backends`). Ends on the backend
 * initBackend would choose, so the caller can go on computing.
 */
export async function probeBackends(): Promise<BackendReport[]> {
  const reports: BackendReport[] = [];
  for (const backend of PREFERENCES.slice(1) as Exclude<BackendPreference, 'auto'>[]) {
    const found = await tryTested(backend);
    reports.push(typeof found === 'string' ? { backend, info: null, reason: found } : { backend, info: found, reason: null });
  }
  active = null;
  chosenFor = null;
  await initBackend();
  return reports;
}

/**
 * Runs `fn` on a CPU backend (wasm when it initialises, else cpu) when the active backend is webgpu, then
 * makes webgpu active again; elsewhere runs it as is. For code that reads with dataSync (the image encoders:
 * vision/encoder.ts, backbone/grid-encoder.ts), which tfjs-webgpu cannot do in Node. Their outputs are
 * host arrays, so nothing computed there stays on the other backend.
 */
export async function onSyncReadableBackend<T>(fn: () => Promise<T>): Promise<T> {
  const current = tf.getBackend();
  if (current !== 'webgpu') return fn();
  if (!(await initWasm()) && !(await activate('cpu'))) throw new Error('neither the wasm nor the cpu backend initialised');
  try {
    return await fn();
  } finally {
    await activate(current);
  }
}

/** Whether initBackend has completed at least once. */
export function isBackendInitialised(): boolean {
  return active !== null;
}

/**
 * The backend in use; follows a later tf.setBackend switch too. Before initBackend this is whatever tfjs
 * would use on its own (the cpu backend, since wasm needs the asynchronous init).
 */
export function getBackendInfo(): BackendInfo {
  const current = tf.getBackend();
  if (active && current === active.name) return active;
  return describe(current, active?.device.startsWith('GPU') ? 'gpu' : null);
}

export { tf };
