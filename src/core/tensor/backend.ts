// Picks and initialises the tfjs backend: native TensorFlow (GPU, then CPU) when its optional package is
// installed, else WebAssembly (SIMD), else the pure-JS cpu backend. Works in plain Node, a worker_thread,
// and when bundled by electron-vite into out/main/*.js (CommonJS, dependencies external).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// Gradients are registered separately from tfjs-core's ops (the tfjs union package does this for us).
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import type { BackendInfo } from '../../shared/types';
import { registerWasmKernels } from './wasm-kernels';

export type BackendPreference = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

const PREFERENCES: readonly BackendPreference[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

// A runtime require the bundler cannot see, so the optional native packages are never bundled and a
// missing one is a catchable error instead of a build failure.
const runtimeRequire = createRequire(import.meta.url);

let active: BackendInfo | null = null;

function tryNative(pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): boolean {
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

function describe(name: string, native: 'gpu' | 'cpu' | null): BackendInfo {
  if (name === 'tensorflow') {
    return { name, threads: 0, device: native === 'gpu' ? 'GPU (TensorFlow CUDA)' : 'CPU (TensorFlow native)', simd: true };
  }
  if (name === 'wasm') {
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    return { name, threads: wasm.getThreadsCount(), device: simd ? 'CPU (wasm SIMD)' : 'CPU (wasm)', simd };
  }
  return { name, threads: 1, device: 'CPU (JavaScript)', simd: false };
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
    if (choice === 'tensorflow-gpu' && tryNative('@tensorflow/tfjs-node-gpu') && (await activate('tensorflow'))) {
      active = describe('tensorflow', 'gpu');
    } else if (choice === 'tensorflow' && tryNative('@tensorflow/tfjs-node') && (await activate('tensorflow'))) {
      active = describe('tensorflow', 'cpu');
    } else if (choice === 'wasm' && (await initWasm())) {
      active = describe('wasm', null);
    } else if (choice === 'cpu' && (await activate('cpu'))) {
      active = describe('cpu', null);
    }
    if (active && tf.getBackend() === active.name) return active;
  }
  throw new Error('No tfjs backend could be initialised (tried ' + order.join(', ') + ')');
}

/** The backend in use (null before initBackend); follows a later tf.setBackend switch too. */
export function getBackendInfo(): BackendInfo | null {
  if (!active) return null;
  const current = tf.getBackend();
  if (current === active.name) return active;
  return describe(current, null);
}

export { tf };
