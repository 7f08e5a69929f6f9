// In-memory form of a dataset between reading the source files and writing the catalog: every format
// reader fills one of these, so filtering, posters and the write step are shared.
import { ImportError } from './import-error';

export interface PosterRef {
  path: string;
  label: string;
  root: string;
}

export interface ItemDraft {
  externalId: string;
  title: string;
  text: string | null;
  genres: string[];
  /** Absolute path of the poster, how warnings name it (relative to the dataset), and the folder it must stay inside. */
  image: PosterRef | null;
}

export class DatasetBuilder {
  readonly items: ItemDraft[] = [];
  readonly userIds: string[] = [];
  /** Per interaction, in file order (the index is the ordinal that breaks timestamp ties). */
  readonly userOf: number[] = [];
  readonly itemOf: number[] = [];
  readonly timestamps: number[] = []; // NaN = none
  readonly ratings: number[] = []; // NaN = none
  private readonly itemIndex = new Map<string, number>();
  private readonly userIndex = new Map<string, number>();

  /** Adds a catalogue item; a repeated id is an error at `file`, `line`. */
  addItem(draft: ItemDraft, file: string, line: number): number {
    if (this.itemIndex.has(draft.externalId)) {
      throw new ImportError(file, line, `item id ${draft.externalId} appears more than once`);
    }
    this.itemIndex.set(draft.externalId, this.items.length);
    this.items.push(draft);
    return this.items.length - 1;
  }

  itemIndexOf(externalId: string): number | undefined {
    return this.itemIndex.get(externalId);
  }

  item(externalId: string): ItemDraft | undefined {
    const i = this.itemIndex.get(externalId);
    return i === undefined ? undefined : this.items[i];
  }

  /** For sources without an item table: the item exists once an interaction names it. */
  itemOrCreate(externalId: string): number {
    const i = this.itemIndex.get(externalId);
    if (i !== undefined) return i;
    this.itemIndex.set(externalId, this.items.length);
    this.items.push({ externalId, title: externalId, text: null, genres: [], image: null });
    return this.items.length - 1;
  }

  addInteraction(userExternalId: string, itemIndex: number, timestamp: number | null, rating: number | null): void {
    let u = this.userIndex.get(userExternalId);
    if (u === undefined) {
      u = this.userIds.length;
      this.userIndex.set(userExternalId, u);
      this.userIds.push(userExternalId);
    }
    this.userOf.push(u);
    this.itemOf.push(itemIndex);
    this.timestamps.push(timestamp ?? NaN);
    this.ratings.push(rating ?? NaN);
  }

  get interactionCount(): number {
    return this.userOf.length;
  }
}
