// Raw frames on a client's connection, for tests of malformed input: the
// public client sends only well-formed calls, so tests that must send
// anything else (and read the agent's replies as text) go through its
// transport here.
import type { HostvisorClient } from '../../../api/client/client.js';

/** Sends one frame as is (text, or binary for a Buffer); replies come back through onRaw. */
export function sendRaw(client: HostvisorClient, frame: string | Buffer): Promise<void> {
  return client.transport.send(frame);
}

/** Every frame the agent sends on this connection, as text; returns a function that stops listening. */
export function onRaw(client: HostvisorClient, listener: (text: string) => void): () => void {
  return client.transport.onFrame(listener);
}

/** Resolves to the connection's close code once it ends (-1 if it ended without one), or 'timeout' after `ms`. */
export async function closeCode(client: HostvisorClient, ms: number): Promise<number | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    client.disconnected.then((d) => d.code ?? -1),
    new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); }),
  ]);
  clearTimeout(timer);
  return r;
}
