#!/usr/bin/env node
// Builds resources/datasets/ml-latest-small, the dataset the app imports on first start:
//   node scripts/make-embedded-dataset.mjs [source folder]   (default: ../shared/datasets/ml-latest-small)
// Copies the MovieLens files and items.csv verbatim, plus only the posters of movies that survive the
// iterative 5-core filter (the only ones the importer stores), and writes ATTRIBUTION.md.
// The 5-core is recomputed here because a plain .mjs script cannot import the TypeScript filter; the
// unit tests check that both agree (test/unit/splits-embedded.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.resolve(process.argv[2] ?? path.join(repoRoot, '..', 'shared', 'datasets', 'ml-latest-small'));
const target = path.join(repoRoot, 'resources', 'datasets', 'ml-latest-small');
const VERBATIM = ['ratings.csv', 'movies.csv', 'links.csv', 'README.txt', 'items.csv'];
const MIN = 5;

for (const f of VERBATIM) {
  if (!fs.existsSync(path.join(source, f))) {
    console.error(`${path.join(source, f)}: missing; pass the ml-latest-small folder as the first argument`);
    process.exit(1);
  }
}

/** Movie ids kept by the iterative 5-core filter over ratings.csv. */
function fiveCoreMovies(ratingsFile) {
  const rows = parse(fs.readFileSync(ratingsFile), { columns: true, skip_empty_lines: true });
  let kept = rows.map((r) => [r.userId, r.movieId]);
  for (;;) {
    const users = new Map();
    const items = new Map();
    for (const [u, i] of kept) {
      users.set(u, (users.get(u) ?? 0) + 1);
      items.set(i, (items.get(i) ?? 0) + 1);
    }
    const next = kept.filter(([u, i]) => users.get(u) >= MIN && items.get(i) >= MIN);
    if (next.length === kept.length) return new Set(kept.map(([, i]) => i));
    kept = next;
  }
}

fs.rmSync(target, { recursive: true, force: true });
fs.mkdirSync(path.join(target, 'posters'), { recursive: true });
for (const f of VERBATIM) fs.copyFileSync(path.join(source, f), path.join(target, f));

const movies = fiveCoreMovies(path.join(source, 'ratings.csv'));
const items = parse(fs.readFileSync(path.join(source, 'items.csv')), { columns: true, skip_empty_lines: true });
let copied = 0;
let bytes = 0;
for (const row of items) {
  if (!movies.has(row.movieId) || !row.poster) continue;
  const from = path.join(source, row.poster);
  if (!fs.existsSync(from)) continue;
  const to = path.join(target, row.poster);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
  copied++;
  bytes += fs.statSync(to).size;
}

fs.writeFileSync(
  path.join(target, 'ATTRIBUTION.md'),
  `# ml-latest-small (embedded default dataset)

**MovieLens data** — \`ratings.csv\`, \`movies.csv\`, \`links.csv\` and \`README.txt\` are the GroupLens
"ml-latest-small" files (September 2018), copied byte-for-byte. They are redistributed under the GroupLens
licence conditions stated in [README.txt](README.txt) (research use, no endorsement, citation, no commercial
use without permission); they are not covered by this app's own licence. Citation: F. Maxwell Harper and
Joseph A. Konstan. 2015. The MovieLens Datasets: History and Context. ACM TiiS 5, 4: 19:1–19:19.
https://doi.org/10.1145/2827872

**Overviews and posters** — This product uses the TMDB API but is not endorsed or certified by TMDB.
\`items.csv\` (copied unchanged) adds TMDB plot overviews and poster paths. The overviews were fetched from the
TMDB API (public GitHub repository Ray880910/movie-recommender, kept only where its TMDB id matches
links.csv; 42 more from the movielens-100k-mm TMDB table). The posters are 128 px thumbnails downscaled from
images in the public GitHub repository rodrigo13714/ML_proyecto2 (one from a TMDB w92 thumbnail). Poster
artwork is copyrighted by its owners; no licence to it is given. The columns \`overview_source\` and
\`poster_source\` record each row's origin.

\`posters/\` holds only the ${copied} thumbnails of movies that survive the iterative 5-core filter (every
user and movie with at least 5 ratings), the only items the workbench stores images for.
`
);
console.log(`${target}: ${VERBATIM.length} files + ${copied} posters (${(bytes / 1e6).toFixed(1)} MB) of ${movies.size} 5-core movies`);
