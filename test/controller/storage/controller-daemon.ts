// Test helper: the real hostvisor-controller daemon (dist/controller/main.js) as a child
// process, on its own SQLite file, PKI and port, so a test can kill -9 it and start it again on
// the same state; and its REST API as the admin.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, scratchDir, stopChild, waitExit } from '../../agent/harness.js';
import { repoRoot } from '../../lab/guest.js';
import { callApi, type Answer, type CallOptions } from '../http/harness.js';

export const CONTROLLER_JS = join(repoRoot(), 'dist', 'controller', 'main.js');

export interface ControllerDaemon {
  dir: string;
  url: string;
  /** every log line (pino JSON) of every run so far */
  logs: string[];
  call(method: string, path: string, o?: CallOptions): Promise<Answer>;
  start(): Promise<void>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** settings: decision settings passed as the daemon's `--settings` file (its defaults otherwise). */
export async function controllerDaemon(o: { listen?: string; echo?: boolean; settings?: Record<string, number> } = {}): Promise<ControllerDaemon> {
  const dir = scratchDir('hv-ctl-');
  const listen = o.listen ?? '127.0.0.1';
  const port = await freePort(); // free on 127.0.0.1; the lab's address has no other listener
  const logs: string[] = [];
  let child: ChildProcess | undefined;
  const args = [CONTROLLER_JS, '--listen', listen, '--port', String(port), '--db', join(dir, 'controller.db'), '--pki', join(dir, 'pki'),
    '--admin-creds', join(dir, 'admin'), '--read-only-creds', join(dir, 'read-only'), '--server-name', listen, '--log-level', 'info'];
  if (o.settings) {
    const file = join(dir, 'settings.json');
    writeFileSync(file, JSON.stringify(o.settings));
    args.push('--settings', file);
  }
  const d: ControllerDaemon = {
    dir, url: `https://${listen}:${port}`, logs,
    call: (method, path, co) => callApi({
      host: listen, port, ca: readFileSync(join(dir, 'pki', 'ca.pem')),
      creds: { cert: readFileSync(join(dir, 'admin', 'cert.pem')), key: readFileSync(join(dir, 'admin', 'key.pem')) },
    }, method, path, co),
    async start() {
      const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`controller not ready in 60 s:\n${logs.slice(-20).join('\n')}`)), 60_000);
        let buf = '';
        const onData = (b: Buffer) => {
          buf += b.toString();
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          for (const l of lines) {
            logs.push(l);
            if (o.echo) process.stderr.write(`[ctl] ${l}\n`);
            if (l.includes('"msg":"controller ready"')) { clearTimeout(timer); resolve(); }
          }
        };
        c.stdout!.on('data', onData);
        c.stderr!.on('data', onData);
        c.once('exit', (code, sig) => { clearTimeout(timer); reject(new Error(`controller exited with ${code ?? sig}:\n${logs.slice(-20).join('\n')}`)); });
      });
    },
    async kill9() {
      if (!child) return;
      const c = child;
      child = undefined;
      c.kill('SIGKILL');
      await waitExit(c, 10_000);
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = undefined;
      await stopChild(c, 15_000);
    },
  };
  return d;
}
