// hostvisor-ctl vms console <vm>: asks for a one-time ticket and prints the vnc:// URL and the
// password, or, with a viewer on PATH (virt-viewer's remote-viewer), starts it on a connection
// file that carries the password, so the password never appears on a command line.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ApiCallError } from '../api-client.js';
import { resolveRef, type RegisterCommands } from './cli-env.js';

interface Ticket { vmId: string; hostId: string; host: string; port: number; password: string; expiresAt: string; url: string }

/** The first executable `name` on PATH, or undefined. */
export function onPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try { accessSync(p, constants.X_OK); return p; } catch { /* not here */ }
  }
  return undefined;
}

/** virt-viewer's connection file; it deletes the file once read. */
export function viewerFile(t: Ticket, title: string): string {
  return ['[virt-viewer]', 'type=vnc', `host=${t.host}`, `port=${t.port}`, `password=${t.password}`, `title=${title}`, 'delete-this-file=1', ''].join('\n');
}

export const registerConsole: RegisterCommands = (program, env) => {
  const vms = program.commands.find((c) => c.name() === 'vms');
  if (!vms) throw new Error('registerConsole needs the vms command registered first');
  vms.command('console <vm>').description('open the VM\'s VNC console: a one-time ticket, then a viewer if one is installed')
    .option('--ttl <seconds>', 'how long the password opens the display', (v) => Number(v))
    .option('--no-viewer', 'only print the URL and password')
    .action(async (ref: string, o: { ttl?: number; viewer: boolean }) => {
      if (o.ttl !== undefined && (!Number.isInteger(o.ttl) || o.ttl < 5 || o.ttl > 3600)) throw new ApiCallError(0, 'InvalidArgument', '--ttl must be 5..3600 seconds');
      const { client } = env.ctx();
      const id = await resolveRef(client, '/api/v1/vms', 'VM', ref);
      const t = await client.call<Ticket>('POST', `/api/v1/vms/${id}/console`, o.ttl !== undefined ? { ttlSeconds: o.ttl } : {});
      const viewer = o.viewer ? onPath('remote-viewer', env.io.env.PATH) : undefined;
      if (viewer) {
        // A new file straight in the temp directory ('wx': never an existing one), not in a
        // directory of its own: the viewer deletes the file once read, and nothing is left behind.
        const file = join(tmpdir(), `hostvisor-console-${randomBytes(9).toString('hex')}.vv`);
        writeFileSync(file, viewerFile(t, ref), { mode: 0o600, flag: 'wx' });
        spawn(viewer, [file], { detached: true, stdio: 'ignore' }).unref();
        env.print({ ...t, viewer }, () => `console of ${ref}: ${viewer} started on ${t.url} (ticket valid until ${t.expiresAt})\n`);
        return;
      }
      env.print(t, () => `console of ${ref}: ${t.url}\npassword: ${t.password} (valid until ${t.expiresAt})\n`);
    });
};
