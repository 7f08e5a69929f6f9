// Picks and initialises the tfjs backend: native TensorFlow (GPU, then CPU) when its optional package is
// installed, else WebAssembly (SIMD), else the pure-JS cpu backend. Works in plain Node, a worker_thread,
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
import { registerWasmKernels } from './wasm-kernels';

export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

const PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

// A runtime require the bundler cannot see, so the optional native packages are never bundled and a
// missing one is a catchable error instead of a build failure.
const runtimeRequire = createRequire(import.meta.url);

let active: BackendInfo | null = null;

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

function describe(name: string, native: 'gpu' | 'cpu' | null): BackendInfo {
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

/**
 * Initialise the best available backend. `prefer` (or env ALMOSTREC_BACKEND, which overrides it) names a
 * starting point; anything unavailable falls through to the next one down the list.
 */
export async function initBackend(prefer: BackendPreference = 'auto'): Promise<BackendInfo> {
  const fromEnv = process.env.ALMOSTREC_BACKEND as BackendPreference | undefined;
  if (fromEnv && !PREFERENCES.includes(fromEnv)) {
    throw new Error(`ALMOSTREC_BACKEND="${fromEnv}" is not one of ${PREFERENCES.join(', ')}`);
  }
  const start = fromEnv ?? prefer;
  const order = start === 'auto' ? PREFERENCES.slice(1) : PREFERENCES.slice(PREFERENCES.indexOf(start));
  for (const choice of order) {
    let found: BackendInfo | null = null;
    if (choice === 'tensorflow-gpu' && tryNative('@tensorflow/tfjs-node-gpu') && (await activate('tensorflow'))) {
      found = describe('tensorflow', 'gpu');
    } else if (choice === 'tensorflow' && tryNative('@tensorflow/tfjs-node') && (await activate('tensorflow'))) {
      found = describe('tensorflow', 'cpu');
    } else if (choice === 'wasm' && (await initWasm())) {
      found = describe('wasm', null);
    } else if (choice === 'cpu' && (await activate('cpu'))) {
      found = describe('cpu', null);
    }
    if (found) {
      active = found;
      setCrossEntropyThreads(computeThreads());
      return found;
    }
  }
  throw new Error('No tfjs backend could be initialised (tried ' + order.join(', ') + ')');
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
