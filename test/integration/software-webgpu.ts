// Shared by the WebGPU integration tests: the software adapter (Dawn's OpenGL backend over Mesa llvmpipe)
// registered in this process, or the reason it could not be, printed once so a skip says why.
import { afterAll } from 'vitest';
import { registerWebGpu } from '../../src/core/tensor/webgpu-backend';

const KEYS = ['EGL_PLATFORM', 'ALMOSTREC_WEBGPU_ADAPTER', 'ALMOSTREC_BACKEND'] as const;

/**
 * Sets the environment for the software adapter (only this test process needs the surfaceless EGL platform),
 * registers it and restores the environment after the file's tests. Returns why there is none, else null.
 */
export async function softwareWebGpu(file: string): Promise<string | null> {
  const saved = KEYS.map((k) => process.env[k]);
  process.env.EGL_PLATFORM = 'surfaceless';
  process.env.ALMOSTREC_WEBGPU_ADAPTER = 'software';
  afterAll(() => {
    KEYS.forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
  });
  try {
    await registerWebGpu('software');
    return null;
  } catch (e) {
    const reason = (e as Error).message;
    console.warn(`${file}: skipped, no software WebGPU adapter: ${reason}`);
    return reason;
  }
}
