// The state every one-shot form keeps while its API call runs: busy, the refusal to show, the success line.
import { toApiError, type ApiError } from './api';

export class FormAction {
  busy = $state(false);
  error = $state<ApiError | null>(null);
  done = $state<string | null>(null);

  /** Runs `work` once (nothing while a run is in flight); its result becomes `done`, a throw becomes `error`. */
  async run(work: () => Promise<string>): Promise<void> {
    if (this.busy) return;
    this.error = null;
    this.done = null;
    this.busy = true;
    try {
      this.done = await work();
    } catch (err) {
      this.error = toApiError(err);
    } finally {
      this.busy = false;
    }
  }
}
