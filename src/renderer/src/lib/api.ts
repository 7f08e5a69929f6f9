// The renderer's only door to the workbench: one client for both transports (Electron IPC via the
// preload bridge, or HTTP + WebSocket in browser mode). Type-only imports keep zod out of the bundle.
import type { ApiInput, ApiMethod, ApiOutput, JobEvent, WorkbenchApi } from '../../../shared/api';
import type { Envelope } from '../../../shared/ipc';

interface PreloadBridge {
  invoke(method: string, input: unknown): Promise<Envelope<unknown>>;
  onEvent(cb: (e: JobEvent) => void): () => void;
}

declare global {
  interface Window {
    almostrec?: PreloadBridge;
  }
}

/** An error that crossed the API boundary (or a transport failure), shown to the user as-is. */
export class ApiError extends Error {
  readonly code: string;
  readonly details: unknown;
  constructor(code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
  }
}

/** Normalise anything thrown into an ApiError so views have one shape to render. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Error) return new ApiError('internal', err.message);
  return new ApiError('internal', String(err));
}

function unwrap<T>(envelope: Envelope<T> | null | undefined): T {
  if (!envelope || typeof envelope !== 'object') throw new ApiError('internal', 'Malformed response from the workbench service.');
  if (envelope.ok) return envelope.result;
  const { code, message, details } = envelope.error;
  throw new ApiError(code, message, details);
}

function ipcClient(bridge: PreloadBridge): WorkbenchApi {
  return {
    async call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiOutput<M>> {
      return unwrap((await bridge.invoke(method, input)) as Envelope<ApiOutput<M>>);
    },
    onEvent: (listener) => bridge.onEvent(listener)
  };
}

const TOKEN_KEY = 'almostrec.token';

/** Take the launch token from `?token=` once, keep it for this tab, and scrub it from the address bar. */
function readToken(): string {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

function httpClient(): WorkbenchApi {
  const token = readToken();
  const listeners = new Set<(e: JobEvent) => void>();
  let socket: WebSocket | null = null;
  let retryMs = 500;

  function connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/events?token=${encodeURIComponent(token)}`);
    socket = ws;
    ws.onopen = () => {
      retryMs = 500;
    };
    ws.onmessage = (msg) => {
      let event: JobEvent;
      try {
        event = JSON.parse(String(msg.data)) as JobEvent;
      } catch {
        return; // a malformed frame must not take the UI down
      }
      for (const l of listeners) l(event);
    };
    ws.onclose = () => {
      socket = null;
      // Back off so a stopped server is not hammered; 10 s cap keeps recovery quick once it returns.
      const wait = retryMs;
      retryMs = Math.min(retryMs * 2, 10_000);
      setTimeout(() => {
        if (listeners.size > 0) connect();
      }, wait);
    };
  }

  return {
    async call<M extends ApiMethod>(method: M, input: ApiInput<M>): Promise<ApiOutput<M>> {
      let res: Response;
      try {
        res = await fetch(`/api/${method}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify(input ?? {})
        });
      } catch (err) {
        throw new ApiError('network', `Cannot reach the workbench service (${toApiError(err).message}).`);
      }
      let body: Envelope<ApiOutput<M>>;
      try {
        body = (await res.json()) as Envelope<ApiOutput<M>>;
      } catch {
        const code = res.status === 401 ? 'unauthorized' : 'internal';
        throw new ApiError(code, `The service answered ${res.status} ${res.statusText} without a readable body.`);
      }
      return unwrap(body);
    },
    onEvent(listener) {
      listeners.add(listener);
      if (!socket) connect();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && socket) socket.close();
      };
    }
  };
}

export const api: WorkbenchApi = window.almostrec ? ipcClient(window.almostrec) : httpClient();
