// The captions and poster grids the pretraining tests train the tiny backbone on (test/setup/tiny-backbone.ts):
// eight items, five with a poster, captions of different lengths so that batches need padding.
import { Rng } from '../../src/core/tensor/rng';

export const PRETRAIN_CAPTIONS = [
  { itemId: 1, caption: 'Toy Story (1995). Genres: Animation, Children. Toys come to life.', hasImage: true },
  { itemId: 2, caption: 'Heat (1995). Genres: Action, Crime. A thief and a detective.', hasImage: true },
  { itemId: 3, caption: 'Casino (1995). Genres: Crime, Drama. Las Vegas in the seventies.', hasImage: false },
  { itemId: 4, caption: 'Babe (1995). Genres: Children, Drama. A pig who wants to herd sheep.', hasImage: true },
  { itemId: 5, caption: 'Fargo (1996). Genres: Comedy, Crime. A kidnapping in the snow goes wrong.', hasImage: true },
  { itemId: 6, caption: 'Clueless (1995). Genres: Comedy, Romance. A Beverly Hills teenager plays matchmaker.', hasImage: false },
  { itemId: 7, caption: 'Jumanji (1995). Genres: Adventure, Fantasy. A board game comes to life.', hasImage: true },
  { itemId: 8, caption: 'Sabrina (1995). Genres: Comedy, Romance. A chauffeur’s daughter returns from Paris.', hasImage: false }
];
export const POSTERS = [1, 2, 4, 5, 7];

/** Seeded vision-tower grids (4 tokens × 1280) for the items with a poster. */
export function posterGrids(): Map<number, Float32Array> {
  const rng = new Rng(3);
  const m = new Map<number, Float32Array>();
  for (const id of POSTERS) m.set(id, Float32Array.from({ length: 4 * 1280 }, () => Math.abs(rng.normal())));
  return m;
}
