// Real systemd-notify against a real AF_UNIX datagram socket standing in for
// systemd's notify socket (no systemd runs here).
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createNotifier } from '../../../agent/systemd/notify.js';
import { scratchDir } from '../harness.js';

t.test('ready and stopping reach the notify socket with our pid', async (t) => {
  const dir = scratchDir('hv-notify-');
  const sock = join(dir, 'notify.sock');
  // A tiny datagram receiver: prints each message as one line.
  const py = spawn('/usr/bin/python3', ['-u', '-c', `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(10)
print("bound", flush=True)
while True:  # until the test kills it (bounded by the timeout)
    msg = s.recv(4096).decode()
    if msg == "BARRIER=1":  # systemd-notify's sync barrier; its fd closes when received
        continue
    print(msg.replace("\\n", "|"), flush=True)
`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { py.kill(); });
  let out = '';
  py.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  for (let i = 0; i < 100 && !existsSync(sock); i++) await sleep(20);
  const notifier = createNotifier({ ...process.env, NOTIFY_SOCKET: sock });
  await notifier.ready('running');
  await notifier.stopping('bye');
  for (let i = 0; i < 100 && out.trim().split('\n').length < 3; i++) await sleep(20);
  py.kill();
  const lines = out.trim().split('\n').slice(1);
  t.match(lines[0], /READY=1/);
  t.match(lines[0], /STATUS=running/);
  t.match(lines[0], new RegExp(`MAINPID=${process.pid}`));
  t.match(lines[1], /STOPPING=1/);
});

t.test('without NOTIFY_SOCKET, notifying is a no-op', async (t) => {
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  await t.resolves(createNotifier(env, '/nonexistent/systemd-notify').ready('x'));
});
