// Issue 16: `auto` considers webgpu again, on a hardware adapter only. In a process of its own, since
// initBackend keeps its first choice: with the software adapter requested (not forced) auto passes webgpu by,
// saying why; on Linux a missing Vulkan loader rules the hardware adapter out without starting Dawn.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { initBackend } from '../../src/core/tensor/backend';
import { hardwareAdapterMissing } from '../../src/core/tensor/webgpu-backend';

const saved = { adapter: process.env.ALMOSTREC_WEBGPU_ADAPTER, backend: process.env.ALMOSTREC_BACKEND, libs: process.env.LD_LIBRARY_PATH };
afterAll(() => {
  for (const [key, value] of [['ALMOSTREC_WEBGPU_ADAPTER', saved.adapter], ['ALMOSTREC_BACKEND', saved.backend], ['LD_LIBRARY_PATH', saved.libs]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});

describe('auto and webgpu', () => {
  test('auto never picks the software adapter: it falls through to a CPU backend with the reason kept', async () => {
    delete process.env.ALMOSTREC_BACKEND;
    process.env.ALMOSTREC_WEBGPU_ADAPTER = 'software';
    const info = await initBackend('auto');
    expect(info.name).not.toBe('webgpu');
    expect(info.fallbacks![0]).toBe('webgpu: auto never picks the software adapter (ALMOSTREC_BACKEND=webgpu uses it)');
    // Asking for webgpu tries the same order but is a choice of its own (the software adapter allowed).
    const asked = await initBackend('webgpu');
    expect(asked.fallbacks ?? []).not.toContain(info.fallbacks![0]);
  });

  test.runIf(process.platform === 'linux')('a Vulkan loader on LD_LIBRARY_PATH counts; none anywhere rules the hardware adapter out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'almostrec-vulkan-'));
    try {
      process.env.LD_LIBRARY_PATH = dir;
      const systemHasOne = hardwareAdapterMissing() === null;
      if (!systemHasOne) expect(hardwareAdapterMissing()).toBe('no Vulkan loader (libvulkan.so.1), so no hardware WebGPU adapter');
      writeFileSync(join(dir, 'libvulkan.so.1'), '');
      expect(hardwareAdapterMissing()).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
