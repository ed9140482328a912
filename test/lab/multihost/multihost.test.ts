// The multi-host lab fixture (lab.sh + lab.ts): two namespaced hosts, each with its own libvirtd
// and sanlock, joined by the lab network; a guest boots on one of them; a single host can be
// powered off and brought back; and a full teardown leaves nothing behind.
// Traffic goes only to loopback and 10.250.0.0/24 inside the lab (checked with assertLabRoute).
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Connection } from '../../../agent/libvirt/index.js';
import { guestDomainXml, waitForSerialMarker } from '../guest.js';
import { LAB_MAIN_LEG, MULTIHOST_DIR, SHARED_DIR, assertLabRoute, labDown, labHost, labUp } from './lab.js';

function run(file: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The process exists and is not a zombie (a zombie may wait for the slow PID 1 to reap it). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s*[ZX]/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function hostUuid(capsXml: string): string | undefined {
  return /<host>\s*<uuid>([^<]+)<\/uuid>/.exec(capsXml)?.[1];
}

async function labNamespaces(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith('hvlab-'));
}

const ms = (t0: number) => Math.round(performance.now() - t0);

t.test('multi-host lab: two hosts with their own libvirtd, sanlock and network', async (t) => {
  // Safety net: whatever happens below, the lab goes away.
  t.teardown(() => labDown(undefined, { keep: false }).catch((e) => console.error(`labDown failed: ${String(e)}`)));

  let t0 = performance.now();
  const hosts = await labUp(2);
  t.comment(`labUp(2): ${ms(t0)} ms`);
  t.equal(hosts.length, 2, 'two hosts');
  const h1 = hosts[0]!;
  const h2 = hosts[1]!;
  t.same([h1.name, h1.address, h2.name, h2.address], ['hvlab-h1', '10.250.0.1', 'hvlab-h2', '10.250.0.2']);

  const pidsBefore = [await h1.daemonPids(), await h2.daemonPids()];
  t0 = performance.now();
  await labUp(2);
  t.comment(`labUp(2) again (nothing to do): ${ms(t0)} ms`);
  t.same([await h1.daemonPids(), await h2.daemonPids()], pidsBefore, 'a second up keeps the running daemons');

  await t.test('each host has its own libvirtd, answering over its unix socket', async (t) => {
    const uuids: string[] = [];
    for (const h of hosts) {
      const conn = await Connection.open(h.libvirtUri);
      try {
        t.equal(await conn.hostname(), h.name, `${h.name}: hostname() is the host's own`);
        const uuid = hostUuid(await conn.capabilities());
        t.ok(uuid, `${h.name}: capabilities carry a host uuid (${uuid})`);
        uuids.push(uuid ?? '');
      } finally {
        await conn.close();
      }
    }
    t.not(uuids[0], uuids[1], 'the host uuids differ');
    const p1 = await h1.daemonPids();
    const p2 = await h2.daemonPids();
    t.ok(p1.libvirtd && p2.libvirtd && p1.libvirtd !== p2.libvirtd, 'two libvirtd processes');
    t.ok(p1.virtlogd && p2.virtlogd && p1.virtlogd !== p2.virtlogd, 'two virtlogd processes');
  });

  await t.test('each host has its own sanlock daemon behind its own /run/sanlock', async (t) => {
    for (const h of hosts) {
      const st = await h.exec(['sanlock', 'client', 'status'], { timeoutMs: 10_000 });
      t.equal(st.code, 0, `${h.name}: sanlock client status succeeds`);
      t.match(st.stdout, new RegExp(`^daemon \\S+\\.${h.name}$`, 'm'), `${h.name}: the daemon is that host's`);
      const inside = await h.exec(['cat', '/run/sanlock/sanlock.pid']);
      const pids = await h.daemonPids();
      t.ok(pids.sanlock, `${h.name}: sanlock runs (pid ${pids.sanlock})`);
      t.equal(Number(inside.stdout.trim()), pids.sanlock, `${h.name}: /run/sanlock inside is ${h.sanlockDir}`);
      t.equal((await h.exec(['hostname'])).stdout.trim(), h.name, `${h.name}: its own UTS namespace`);
    }
    t.not((await h1.daemonPids()).sanlock, (await h2.daemonPids()).sanlock, 'two sanlock daemons');
  });

  await t.test('lab network: host to host, main namespace to host, and nothing beyond', async (t) => {
    const ping = await h1.exec(['busybox', 'ping', '-c', '2', '-W', '2', h2.address], { timeoutMs: 15_000 });
    t.equal(ping.code, 0, `${h1.name} pings ${h2.address}`);
    t.match(ping.stdout, /2 packets received/);

    await assertLabRoute(h1.address);
    const mainPing = await run('busybox', ['ping', '-c', '2', '-W', '2', h1.address], 15_000);
    t.equal(mainPing.code, 0, `the main namespace pings ${h1.address} over ${LAB_MAIN_LEG}`);

    // Routing lookups only (no packets): outside the /24 nothing is routable, from a host or from
    // the main namespace.
    const outside = await h1.exec(['ip', '-4', 'route', 'get', '192.0.2.1']);
    t.not(outside.code, 0, `${h1.name} has no route out of the lab (${outside.stderr.trim()})`);
    const wider = await run('ip', ['-4', 'route', 'get', '10.250.1.1']);
    t.not(wider.code, 0, 'the main namespace cannot route to 10.250.1.1 (blackhole)');
    await t.rejects(assertLabRoute('10.250.1.1'), 'assertLabRoute refuses addresses outside the lab /24');
  });

  await t.test('a TCP server inside host 2 is reachable from the main namespace', async (t) => {
    const port = 17000 + (process.pid % 1000);
    const server = h2.spawn(['node', '-e', `
      const net = require('node:net'), os = require('node:os');
      const s = net.createServer((c) => { c.end('hello from ' + os.hostname() + '\\n'); });
      s.listen(${port}, '${h2.address}', () => console.log('LISTENING'));
      setTimeout(() => process.exit(0), 30000).unref();
    `]);
    t.teardown(() => { server.kill('SIGKILL'); });
    let serverOut = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not listen within 15 s: ${serverOut}`)), 15_000);
      server.stdout!.on('data', (b: Buffer) => {
        serverOut += b.toString();
        if (serverOut.includes('LISTENING')) { clearTimeout(timer); resolve(); }
      });
      server.stderr!.on('data', (b: Buffer) => { serverOut += b.toString(); });
      server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${serverOut}`)); });
    });

    await assertLabRoute(h2.address);
    const reply = await new Promise<string>((resolve, reject) => {
      let data = '';
      const sock = connect({ host: h2.address, port, timeout: 5_000 });
      sock.on('data', (b: Buffer) => { data += b.toString(); });
      sock.on('end', () => resolve(data));
      sock.on('timeout', () => { sock.destroy(); reject(new Error('connection timed out')); });
      sock.on('error', reject);
    });
    t.equal(reply, `hello from ${h2.name}\n`, 'the server in host 2 answers the main namespace');
  });

  await t.test('a guest boots on host 1, and host 2 does not see it', async (t) => {
    const name = `hvlab-boot-${process.pid}`;
    const serial = join(h1.guestsDir, `${name}.serial`);
    const c1 = await Connection.open(h1.libvirtUri, { callTimeoutMs: 60_000 });
    const c2 = await Connection.open(h2.libvirtUri);
    t.teardown(async () => { await c1.close().catch(() => {}); await c2.close().catch(() => {}); });
    const t0 = performance.now();
    const dom = await c1.createXML(guestDomainXml({ name, virtType: 'qemu', serialPath: serial }));
    t.teardown(() => dom.destroy().catch(() => {}));
    const boot = await waitForSerialMarker(serial, 'LAB-BOOT-OK', 90_000);
    t.match(boot.line, /^LAB-BOOT-OK/, `LAB-BOOT-OK after ${ms(t0)} ms`);
    t.ok((await c1.listAllDomains()).some((d) => d.name === name), 'host 1 runs the guest');
    t.notOk((await c2.listAllDomains()).some((d) => d.name === name), 'host 2 does not');
    const qemuLog = await readFile(join(h1.logDir, 'libvirt', 'qemu', `${name}.log`), 'utf8');
    t.match(qemuLog, /qemu-system-x86_64/, 'the qemu log is in host 1\'s own /var/log/libvirt');
    await dom.destroy();
    t.notOk((await c1.listAllDomains()).some((d) => d.name === name), 'destroyed');
  });

  await t.test('the shared directory is the same on both hosts', async (t) => {
    const file = join(SHARED_DIR, `shared-${process.pid}.txt`);
    const w = await h1.exec(['sh', '-c', `echo written-by-$(hostname) > ${file}`]);
    t.equal(w.code, 0);
    const r = await h2.exec(['cat', file]);
    t.equal(r.stdout, 'written-by-hvlab-h1\n', 'host 2 reads what host 1 wrote');
    await h2.exec(['rm', '-f', file]);
  });

  await t.test('one host can be powered off (SIGKILL to everything in it) and brought back', async (t) => {
    const keep = await h1.daemonPids();
    const gone = await h2.daemonPids();
    t0 = performance.now();
    await labDown([2], { kill: true });
    t.comment(`labDown([2], { kill: true }): ${ms(t0)} ms`);
    t.same((await labNamespaces()).sort(), ['hvlab-h1', 'hvlab-net'], 'only host 1 and the network remain');
    for (const pid of Object.values(gone)) t.notOk(alive(pid), `host 2 process ${pid} is gone`);
    t.same(await h1.daemonPids(), keep, 'host 1 keeps its daemons');
    const conn = await Connection.open(h1.libvirtUri);
    t.equal(await conn.hostname(), h1.name, 'host 1 still answers');
    await conn.close();
    const ping = await h1.exec(['busybox', 'ping', '-c', '1', '-W', '1', h2.address], { timeoutMs: 10_000 });
    t.not(ping.code, 0, 'host 2 no longer answers on the lab network');

    t0 = performance.now();
    await labUp(2);
    t.comment(`labUp(2) with host 1 running: ${ms(t0)} ms`);
    t.same(await h1.daemonPids(), keep, 'host 1 was left alone');
    const back = labHost(2);
    const c2 = await Connection.open(back.libvirtUri);
    t.equal(await c2.hostname(), 'hvlab-h2', 'host 2 is back');
    await c2.close();
  });

  await t.test('teardown leaves no namespaces, daemons, mounts or routes', async (t) => {
    const pids = [...Object.values(await h1.daemonPids()), ...Object.values(await h2.daemonPids())];
    t.equal(pids.length, 6, 'three daemons per host before teardown');
    t0 = performance.now();
    await labDown(undefined, { keep: false });
    t.comment(`labDown(): ${ms(t0)} ms`);
    t.same(await labNamespaces(), [], 'no lab namespaces');
    for (const pid of pids) t.notOk(alive(pid), `daemon ${pid} is gone`);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    t.notOk(mounts.includes(MULTIHOST_DIR), 'no lab mounts in the main namespace');
    const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
    const left = routes.stdout.split('\n').filter((l) => l.includes('10.250.'));
    t.same(left.filter((l) => !/^blackhole 10\.250\.0\.0\/16\b/.test(l.trim())), [], 'no 10.250 route but the blackhole (kept: the network fixtures share it)');
    const leg = await run('ip', ['link', 'show', LAB_MAIN_LEG]);
    t.not(leg.code, 0, `no ${LAB_MAIN_LEG} link`);
    t0 = performance.now();
    await labDown(undefined, { keep: false });
    t.comment(`labDown() again (nothing to do): ${ms(t0)} ms`);
  });
});
