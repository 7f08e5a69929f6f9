// Hostile API inputs sent through both transports (Electron IPC and browser-mode HTTP): each must be
// refused with exactly the envelope the shared contract's schema gives, which proves both transports
// validate with that one schema before any handler runs.
import { apiInputs, type ApiMethod } from '../../src/shared/api';
import { toApiError } from '../../src/main/services/api-errors';

export interface BadInput {
  what: string;
  method: string;
  input: unknown;
}

export const BAD_INPUTS: readonly BadInput[] = [
  { what: 'a negative id', method: 'runs.get', input: { runId: -1 } },
  { what: 'SQL in an id', method: 'runs.get', input: { runId: '1 OR 1=1' } },
  { what: 'an unknown key', method: 'runs.get', input: { runId: 1, extra: true } },
  { what: 'a __proto__ key', method: 'runs.get', input: JSON.parse('{"runId":1,"__proto__":{"polluted":true}}') as unknown },
  { what: 'an array for an object', method: 'app.info', input: [] },
  { what: 'an empty import path', method: 'datasets.import', input: { format: 'generic', path: '', name: 'x' } },
  { what: 'an unknown import format', method: 'datasets.import', input: { format: '../../etc', path: '/tmp', name: 'x' } },
  { what: 'a huge page size', method: 'items.search', input: { datasetId: 1, limit: 1e9 } },
  { what: 'an unknown model', method: 'train.start', input: { model: 'rm -rf /', datasetId: 1 } },
  { what: 'a non-number hyper-parameter', method: 'train.start', input: { model: 'sasrec', datasetId: 1, config: { epochs: 'many' } } },
  { what: 'too many runs', method: 'caseStudy.get', input: { datasetId: 1, userId: 1, runIds: Array.from({ length: 50 }, () => 1) } },
  { what: 'a number for a job id', method: 'jobs.cancel', input: { jobId: 42 } },
  { what: 'a 300-character name', method: 'backbones.register', input: { path: '/tmp', name: 'n'.repeat(300) } },
  { what: 'an unknown export format', method: 'adapters.export', input: { runId: 1, format: 'pickle', out: '/tmp/x' } },
  { what: 'a blank bundle folder', method: 'adapters.import', input: { path: '   ' } }
];

/** Method names that are not API methods, prototype members included. */
export const UNKNOWN_METHODS: readonly string[] = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'runs.get.x', '../app.info', ''];

/** The envelope the shared schema gives for `bad`, as it crosses a transport (JSON). */
export function expectedRefusal(bad: BadInput): unknown {
  const parsed = apiInputs[bad.method as ApiMethod].safeParse(bad.input);
  if (parsed.success) throw new Error(`${bad.what}: the schema accepts it, so it is no bad input`);
  return JSON.parse(JSON.stringify({ ok: false, error: toApiError(parsed.error) }));
}
