// What the Case study view compares; kept outside the component so it survives switching views.
import type { UserSummary } from '../../../shared/types';

class CaseSelection {
  datasetId = $state<number | null>(null);
  user = $state<UserSummary | null>(null);
  /** null = not chosen by the user yet, so the view applies its default (latest run per model). */
  runIds = $state<number[] | null>(null);

  /** Selections belong to one dataset; switching dataset starts over. */
  forDataset(id: number | null): void {
    if (id === this.datasetId) return;
    this.datasetId = id;
    this.user = null;
    this.runIds = null;
  }
}

export const caseSel = new CaseSelection();
