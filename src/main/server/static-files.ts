// The built UI as browser mode serves it: a table of the regular files found in the renderer folder when
// the server starts, looked up by URL path. No part of a request ever becomes a file-system path, so
// `../`, `%2e%2e`, encoded slashes, absolute paths and NUL bytes simply find no entry; symbolic links are
// left out of the table, so none can lead outside the folder.
import { constants, readdirSync, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname, join } from 'node:path';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2'
};

/** The built renderer is a few dozen files; the cap only stops a wrong folder from being walked whole. */
const MAX_FILES = 10_000;
const MAX_DEPTH = 8;

export interface StaticFile {
  path: string;
  contentType: string;
}

/** URL path ("/", "/assets/index-abc.js") → the file it serves. */
export type StaticFiles = ReadonlyMap<string, StaticFile>;

export function indexStaticFiles(root: string): StaticFiles {
  const files = new Map<string, StaticFile>();
  const walk = (dir: string, urlPrefix: string, depth: number) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const urlPath = `${urlPrefix}/${entry.name}`;
      // Dirent types come from lstat: a symbolic link is neither a file nor a directory here.
      if (entry.isDirectory() && depth < MAX_DEPTH) walk(path, urlPath, depth + 1);
      else if (entry.isFile()) {
        if (files.size >= MAX_FILES) throw new Error(`${root} holds more than ${MAX_FILES} files: is it the built UI?`);
        files.set(urlPath, { path, contentType: MIME[extname(entry.name).toLowerCase()] ?? 'application/octet-stream' });
      }
    }
  };
  walk(root, '', 0);
  const index = files.get('/index.html');
  if (!index) throw new Error(`The UI is not built: ${join(root, 'index.html')} is missing (run "npm run build")`);
  files.set('/', index);
  return files;
}

/** The entry for a request's path (as sent, percent-encoded), or null; throws URIError on a malformed escape. */
export function lookupStaticFile(files: StaticFiles, rawPathname: string): StaticFile | null {
  return files.get(decodeURIComponent(rawPathname)) ?? null;
}

/** Opens without following a link, in case a file was replaced by one after the server started. */
export async function openStaticFile(file: StaticFile): Promise<ReadStream> {
  const handle = await open(file.path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  return handle.createReadStream();
}
