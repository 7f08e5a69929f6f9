// Builds the corpus' import worker (import-worker.ts: the job worker's import path) from the current
// sources, so the corpus runs the code the app runs without depending on a stale out/. Vite (the app's
// bundler) with dependencies external, as electron-vite builds the app's workers.
import path from 'node:path';
import { build } from 'vite';

const ROOT = path.resolve(__dirname, '../../..');

/** Returns the path of the bundled worker (CommonJS, under out/ so node_modules resolves). */
export async function buildImportWorker(): Promise<string> {
  const outDir = path.join(ROOT, 'out', 'safety-corpus');
  await build({
    configFile: false,
    root: ROOT,
    logLevel: 'silent',
    build: {
      ssr: path.join(__dirname, 'import-worker.ts'),
      outDir,
      emptyOutDir: true,
      minify: false,
      rollupOptions: { output: { format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs' } }
    }
  });
  return path.join(outDir, 'import-worker.cjs');
}
