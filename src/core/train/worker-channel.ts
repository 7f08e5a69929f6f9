// The main thread's handle on a replica worker (a worker thread with its own tfjs engine): requests are
// answered in order; an 'error' answer, a crash or an exit fails the request waiting and every later one.
// Shared by model training's replicas (replicas.ts) and the backbone pretraining's.
import { Worker } from 'node:worker_threads';

/** What every replica answers besides its own messages. */
export type ChannelAnswer = { type: 'ready' } | { type: 'error'; message: string };

export class WorkerChannel<To, From extends { type: string }> {
  private waiting: { resolve: (m: From) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    label: string
  ) {
    worker.on('message', (m: From | ChannelAnswer) => {
      const next = this.waiting.shift();
      if (m.type === 'error') this.failure ??= new Error(`${label}: ${(m as Extract<ChannelAnswer, { type: 'error' }>).message}`);
      if (next) {
        if (m.type === 'error') next.reject(this.failure!);
        else next.resolve(m as From);
      }
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const w of this.waiting.splice(0)) w.reject(this.failure);
    };
    worker.on('error', (e) => fail(new Error(`${label} crashed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`${label} exited (code ${code})`)));
  }

  /** Starts the worker on `workerData` and waits for its first answer ('ready' once its model is built). */
  static async start<To, From extends { type: string }>(script: string, workerData: unknown, label: string): Promise<WorkerChannel<To, From>> {
    const channel = new WorkerChannel<To, From>(new Worker(script, { workerData }), label);
    await channel.next();
    return channel;
  }

  private next(): Promise<From> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** A message that gets no answer (a failure shows on the next request). */
  send(m: To, transfer: ArrayBuffer[] = []): void {
    if (this.failure) throw this.failure;
    this.worker.postMessage(m, transfer);
  }

  /** A message and its answer. */
  request(m: To, transfer: ArrayBuffer[] = []): Promise<From> {
    const answer = this.next();
    this.worker.postMessage(m, transfer);
    return answer;
  }

  async close(closing: To): Promise<void> {
    this.worker.postMessage(closing);
    await this.worker.terminate();
  }
}
