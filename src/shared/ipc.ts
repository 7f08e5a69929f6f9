// Transport constants and the response envelope, shared by main, preload and renderer. No dependencies,
// so the sandboxed preload and the renderer bundle stay free of the schema library.
import type { ApiErrorShape } from './types';

export const IPC_INVOKE_CHANNEL = 'almostrec:invoke';
export const IPC_EVENT_CHANNEL = 'almostrec:event';

export type Envelope<T> = { ok: true; result: T } | { ok: false; error: ApiErrorShape };
