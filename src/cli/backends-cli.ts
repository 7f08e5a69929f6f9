// `almostrec backends`: every tfjs backend, initialised and self-tested against cpu, with its device or the
// reason it is not offered, then the one training would use (what initBackend picks in this environment).
import { getBackendInfo, probeBackends, type BackendReport } from '../core/tensor/backend';

export function describeReport(r: BackendReport): string {
  return r.info ? `${r.backend}\tok (self-test passed)\t${r.info.device}` : `${r.backend}\tnot offered\t${r.reason}`;
}

export async function backendsCommand(json: boolean): Promise<void> {
  const reports = await probeBackends();
  const chosen = getBackendInfo();
  const write = (obj: unknown, text: string) => process.stdout.write(json ? `${JSON.stringify(obj)}\n` : `${text}\n`);
  for (const r of reports) write(r, describeReport(r));
  write({ chosen }, `chosen: ${chosen.name} (${chosen.device})${process.env.ALMOSTREC_BACKEND ? ` [ALMOSTREC_BACKEND=${process.env.ALMOSTREC_BACKEND}]` : ''}`);
}
