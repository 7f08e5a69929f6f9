// The WebGPU backend in plain Node (CLI, job and replica workers, the Electron main process): Dawn for Node
// (`webgpu`) provides navigator.gpu, tfjs-backend-webgpu runs its kernels on it. A real adapter is used by
// default; the software one (Dawn's OpenGL backend over Mesa llvmpipe, slow: tiny models and CI only) only
// when ALMOSTREC_WEBGPU_ADAPTER=software, which also needs EGL_PLATFORM=surfaceless on a machine without
// a display.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

export type AdapterKind = 'hardware' | 'software';

export interface WebGpuDevice {
  /** Vendor, architecture, device and description as the adapter reports them, e.g. "llvmpipe-llvm-15-0-6-256-bits- (OpenGL version 4.5 (Core Profile) Mesa 22.3.6)". */
  adapter: string;
  /** WebGPU does not expose device memory; the largest single buffer the adapter allows stands in for it. */
  memory: string;
}

/** Which adapter env ALMOSTREC_WEBGPU_ADAPTER asks for (hardware unless it says software). */
export function requestedAdapterKind(): AdapterKind {
  const v = process.env.ALMOSTREC_WEBGPU_ADAPTER;
  if (v === undefined || v === '' || v === 'hardware') return 'hardware';
  if (v === 'software') return 'software';
  throw new Error(`ALMOSTREC_WEBGPU_ADAPTER="${v}" is not one of hardware, software`);
}

/** Where the dynamic loader looks for libraries on Linux besides LD_LIBRARY_PATH (Debian, Fedora, Arch layouts). */
const LINUX_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib64', '/lib'];

/**
 * Why there can be no hardware adapter without asking Dawn: on Linux it reaches a GPU only through the
 * Vulkan loader, and without one Dawn prints a warning on every start (auto tries webgpu on every machine).
 * Null where the loader is found, or on other platforms (Dawn uses D3D12 or Metal there).
 */
export function hardwareAdapterMissing(): string | null {
  if (process.platform !== 'linux') return null;
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LINUX_LIB_DIRS];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1'))) ? null : 'no Vulkan loader (libvulkan.so.1), so no hardware WebGPU adapter';
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

function describeAdapter(adapter: GPUAdapter): WebGpuDevice {
  const i = adapter.info;
  // Dawn fills different fields per platform (on llvmpipe: device and description only).
  const who = [i.vendor, i.architecture, i.device].filter(Boolean).join(' ') || 'unknown adapter';
  const gib = adapter.limits.maxBufferSize / 2 ** 30;
  return { adapter: i.description ? `${who} (${i.description})` : who, memory: `memory not exposed by WebGPU; max buffer ${gib.toFixed(1)} GiB` };
}

/**
 * tfjs-webgpu's AddN binds every input as a storage buffer and, unlike its Concat, never splits them: past the
 * device's maxStorageBuffersPerShaderStage − 1 inputs the pipeline is invalid and the sum silently wrong (on
 * llvmpipe 12 ones summed to 21; NextItNet's regularisation adds 10 norms). This sums in groups that fit.
 */
let groupedAddN = false;
function registerGroupedAddN(): void {
  const original = tf.getKernel('AddN', 'webgpu');
  if (!original || groupedAddN) return;
  const kernelFunc: tf.KernelFunc = (args) => {
    const backend = args.backend as { device: GPUDevice; disposeData(dataId: object): boolean };
    const group = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    let inputs = args.inputs as unknown as tf.TensorInfo[];
    const partials: tf.TensorInfo[] = [];
    while (inputs.length > group) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < inputs.length; i += group) {
        const part = inputs.slice(i, i + group);
        if (part.length === 1) next.push(part[0]);
        else {
          const sum = original.kernelFunc({ ...args, inputs: part as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
          partials.push(sum);
          next.push(sum);
        }
      }
      inputs = next;
    }
    const out = original.kernelFunc({ ...args, inputs: inputs as unknown as tf.NamedTensorInfoMap });
    // The backend frees a partial sum once the queued work that reads it has run.
    for (const p of partials) backend.disposeData(p.dataId);
    return out;
  };
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({ kernelName: 'AddN', backendName: 'webgpu', kernelFunc });
  groupedAddN = true;
}
// tfjs has one "webgpu" backend per thread: the first adapter registered stays for the thread's life.
let registered: { kind: AdapterKind; device: WebGpuDevice; limits: WebGpuLimits } | null = null;

/** The adapter's bounds on a single buffer, in bytes (WebGPU exposes no memory size). */
export interface WebGpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** The registered adapter's buffer limits; null before registerWebGpu succeeded in this thread. */
export function webGpuLimits(): WebGpuLimits | null {
  return registered ? { ...registered.limits } : null;
}

/**
 * Registers tfjs's "webgpu" backend on a Dawn adapter of the requested kind. Throws with the reason when the
 * package does not load or no adapter of that kind exists; a second call returns the first device, or
 * throws if it asks for the other kind.
 */
export async function registerWebGpu(kind: AdapterKind): Promise<WebGpuDevice> {
  if (registered) {
    if (registered.kind !== kind) throw new Error(`this thread already runs WebGPU on the ${registered.kind} adapter`);
    return registered.device;
  }
  // `webgpu` is ESM only; a dynamic import keeps it out of the CommonJS bundle's static requires.
  const dawn = (await import('webgpu')) as unknown as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create(kind === 'software' ? ['backend=opengl'] : []);
  const adapter =
    kind === 'software'
      ? await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions)
      : await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(kind === 'software' ? 'no software WebGPU adapter (needs Mesa EGL/GL and EGL_PLATFORM=surfaceless)' : 'no hardware WebGPU adapter found');
  if (kind === 'hardware' && /llvmpipe|swiftshader|lavapipe/i.test(`${adapter.info.description} ${adapter.info.architecture}`)) {
    throw new Error(`only a software WebGPU adapter (${adapter.info.description}); set ALMOSTREC_WEBGPU_ADAPTER=software to use it`);
  }
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup
    }
  });
  // tfjs-backend-webgpu checks navigator.gpu in its constructor; Node 20 has no navigator at all.
  const nav = ((globalThis as { navigator?: { gpu?: GPU } }).navigator ??= {});
  if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  /**
   * tfjs-webgpu reads GPU data synchronously (dataSync) through an OffscreenCanvas, which Node lacks; the
   * bare ReferenceError would say nothing useful, so a sync read of data that lives only on the GPU fails
   * with what to do instead. Values still cached on the CPU read fine.
   */
  class NodeWebGPUBackend extends WebGPUBackend {
    override readSync(dataId: object): tf.backend_util.BackendValues {
      try {
        return super.readSync(dataId);
      } catch (e) {
        if (e instanceof ReferenceError && /OffscreenCanvas/.test(e.message)) {
          throw new Error('the webgpu backend cannot read GPU data synchronously in Node (dataSync/arraySync): this code path must read with await data()');
        }
        throw e;
      }
    }
  }
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new NodeWebGPUBackend(device, adapter.info), 3);
  registerGroupedAddN();
  registered = { kind, device: describeAdapter(adapter), limits: { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize } };
  return registered.device;
}
