import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import type { Plugin } from 'vite';
import { UI_CSP_META } from './src/shared/csp';

const CSP_MARKER = '__ALMOSTREC_CSP__';

/** Writes the one UI policy (src/shared/csp.ts) into index.html's CSP <meta> tag; fails the build if it is missing. */
function contentSecurityPolicy(): Plugin {
  return {
    name: 'almostrec-csp',
    transformIndexHtml: {
      order: 'pre',
      handler: (html) => {
        if (!html.includes(CSP_MARKER)) throw new Error(`index.html has no ${CSP_MARKER} CSP placeholder`);
        return html.replace(CSP_MARKER, UI_CSP_META);
      }
    }
  };
}

// One build for every Node-side entry: the Electron main process, the browser-mode server, the CLI,
// the benchmark runner, the job worker and the inference worker. All share src/core and src/shared; dependencies stay external.
export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        input: {
          index: resolve(__dirname, 'src/main/index.ts'),
          browser: resolve(__dirname, 'src/main/browser.ts'),
          'job-worker': resolve(__dirname, 'src/main/workers/job-worker.ts'),
          'train-replica': resolve(__dirname, 'src/main/workers/train-replica.ts'),
          'pretrain-replica': resolve(__dirname, 'src/main/workers/pretrain-replica.ts'),
          'inference-worker': resolve(__dirname, 'src/main/workers/inference-worker.ts'),
          cli: resolve(__dirname, 'src/cli/index.ts'),
          bench: resolve(__dirname, 'src/cli/bench.ts')
        }
      }
    }
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: { input: { index: resolve(__dirname, 'src/preload/index.ts') } }
    }
  },
  renderer: {
    root: resolve(__dirname, 'src/renderer'),
    build: {
      outDir: resolve(__dirname, 'out/renderer'),
      rollupOptions: { input: { index: resolve(__dirname, 'src/renderer/index.html') } }
    },
    plugins: [svelte(), contentSecurityPolicy()]
  }
});
