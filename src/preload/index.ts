// Exposes exactly the typed API to the renderer: one invoke function and one event subscription.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { IPC_EVENT_CHANNEL, IPC_INVOKE_CHANNEL, type Envelope } from '../shared/ipc';
import type { JobEvent } from '../shared/api';

const bridge = {
  invoke: (method: string, input: unknown): Promise<Envelope<unknown>> => ipcRenderer.invoke(IPC_INVOKE_CHANNEL, method, input),
  onEvent: (listener: (e: JobEvent) => void): (() => void) => {
    const wrapped = (_e: IpcRendererEvent, payload: JobEvent) => listener(payload);
    ipcRenderer.on(IPC_EVENT_CHANNEL, wrapped);
    return () => ipcRenderer.removeListener(IPC_EVENT_CHANNEL, wrapped);
  }
};

export type AlmostrecBridge = typeof bridge;

contextBridge.exposeInMainWorld('almostrec', bridge);
