// Live migration between two lab hosts (test/lab/multihost), one agent in
// each, driven only through the API: the tiny guest prints a counter on its
// serial console every 100 ms; VM.migrate moves it A -> B, where it keeps
// counting with no new boot, the source ends Down with "migration
// succeeded" and the progress events never go down. A cancel in mid-copy
// leaves the VM Up on A and no domain on B. libvirt's own connection between
// the hosts is qemu+tcp on the lab network (what the lab's libvirtd listens
// on); the serial log is per host (/var/log/libvirt is private to each).
import t from 'tap';
import { readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { labDown, labUp, type LabHost } from '../../lab/multihost/lab.js';
import { GUEST_DIR, waitForSerialMarker } from '../../lab/guest.js';
import { bounded, StatusWatch, testConfig, type VmSpecParam } from '../harness.js';
import { connectLabClient, spawnLabAgent, type LabAgent } from '../storage/lab-agents.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { MigrationStatsT } from '../../../api/schema.js';

const echo = !!process.env['HV_TEST_LOG'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const TICKER = Buffer.from('i=0; while :; do echo "LAB-TICK $i"; i=$((i+1)); sleep 0.1; done\n').toString('base64');
const SERIAL_DIR = '/var/log/libvirt/qemu';

/** The guest's serial log as host `h` has it (its private /var/log/libvirt), from the main namespace. */
const serialOn = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);
const ticks = (file: string): number[] => (existsSync(file) ? readFileSync(file, 'latin1') : '').split('\n').flatMap((l) => {
  const m = /LAB-TICK (\d+)/.exec(l);
  return m ? [Number(m[1])] : [];
});

function ticker(name: string, customProperties?: Record<string, string>): { vmID: string; spec: VmSpecParam } {
  const g = {
    vmID: randomUUID(),
    spec: {
      name, memoryMiB: 128, vcpus: 1, domainType: 'qemu',
      kernel: join(GUEST_DIR, 'vmlinux'), initrd: join(GUEST_DIR, 'initrd.img'),
      cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', `lab.sh=${TICKER}`].join(' '),
      serialLog: join(SERIAL_DIR, `${name}.serial`),
    } as VmSpecParam,
  };
  if (customProperties) g.spec.customProperties = customProperties;
  return g;
}

t.test('live migration between two lab hosts through the agents', async (t) => {
  const agents: LabAgent[] = [];
  const clients: HostvisorClient[] = [];
  const vms: Array<{ vmID: string }> = [];
  t.teardown(async () => {
    for (const c of clients) for (const v of vms) await bounded('VM.destroy', c.call('VM.destroy', { vmID: v.vmID }).catch(() => {}), 30_000);
    for (const c of clients) await bounded('client close', c.close(), 10_000);
    for (const a of agents) await bounded('agent stop', a.stop(), 30_000);
    await bounded('labDown', labDown(), 120_000);
  });
  const tUp = performance.now();
  const hosts = await labUp(2);
  const [hA, hB] = hosts as [LabHost, LabHost];
  const start = async (h: LabHost): Promise<LabAgent> => {
    await h.exec(['mkdir', '-p', SERIAL_DIR]);
    const config = await testConfig({
      'rpc.host': '0.0.0.0', 'rpc.port': 54321, 'virt.domainType': 'qemu',
      'migration.libvirtTransport': 'tcp', 'migration.peerTlsServername': 'localhost',
      'migration.monitorIntervalMs': 250, 'migration.incomingStartTimeoutMs': 10_000, 'migration.retryIntervalMs': 1_000,
    });
    // A destination hook that refuses VMs with the custom property refuse_migration=yes (exit 2 fails the hook point).
    const hookDir = join(config['hooks.dir'], 'before_vm_migrate_destination');
    mkdirSync(hookDir, { recursive: true });
    writeFileSync(join(hookDir, '50_refuse'), '#!/bin/sh\n[ "$refuse_migration" = yes ] && { echo "refused by the test hook" >&2; exit 2; }\nexit 0\n', { mode: 0o755 });
    const a = await spawnLabAgent(h, config, { echo });
    agents.push(a);
    return a;
  };
  const [aA, aB] = await Promise.all([start(hA), start(hB)]);
  const [cA, cB] = await Promise.all([connectLabClient(aA), connectLabClient(aB)]);
  clients.push(cA, cB);
  t.comment(`lab and agents up in ${((performance.now() - tUp) / 1000).toFixed(1)} s`);
  const watchA = new StatusWatch(cA);
  const watchB = new StatusWatch(cB);
  const progress = new Map<string, Array<MigrationStatsT['progress']>>();
  const lastMig = new Map<string, Record<string, unknown>>();
  cA.on('VM_migration_status', (vmId, body) => {
    progress.set(vmId, [...(progress.get(vmId) ?? []), body.progress]);
    lastMig.set(vmId, body);
  });
  const dst = `${hB.address}:54321`;
  /** A ticking guest started on A (Up when this returns), destroyed at teardown. */
  const startOnA = async (name: string, customProperties?: Record<string, string>): Promise<ReturnType<typeof ticker>> => {
    const g = ticker(name, customProperties);
    vms.push(g);
    await cA.call('VM.create', { vmID: g.vmID, spec: g.spec });
    await watchA.wait(g.vmID, 'Up', 60_000);
    return g;
  };
  const onB = async (name: string): Promise<string[]> => (await hB.exec(['virsh', '-c', 'qemu:///system', 'list', '--all', '--name'])).stdout.split('\n').filter((l) => l.trim() === name);

  await t.test('A -> B: the guest keeps counting on B with no reboot; A is Down with "migration succeeded"; progress is monotone', async (t) => {
    const g = await startOnA('hv-it-mig');
    await waitForSerialMarker(serialOn(hA, g.spec.name), 'LAB-TICK 20', 120_000);
    const t0 = performance.now();
    const r = await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 1000 } });
    const answeredMs = performance.now() - t0;
    t.equal(r.status.code, 0, `VM.migrate answered at once (${answeredMs.toFixed(0)} ms): ${r.status.message}`);
    t.ok(answeredMs < 5_000, 'within 5 s');
    const down = await watchA.wait(g.vmID, 'Down', 120_000);
    const totalMs = performance.now() - t0;
    t.equal(down['exitMessage'], 'migration succeeded', 'source Down with "migration succeeded"');
    t.equal(down['exitCode'], 0, 'exit code 0');
    await watchB.wait(g.vmID, 'Up', 30_000);
    t.ok(watchB.statuses(g.vmID).includes('Migration Destination'), `B showed the VM as Migration Destination first (${watchB.statuses(g.vmID).join(' -> ')})`);
    t.ok(watchA.statuses(g.vmID).includes('Migration Source'), `A showed it as Migration Source (${watchA.statuses(g.vmID).join(' -> ')})`);
    // The VM goes Down on libvirt's STOPPED event; the migration's own end (stats, last event) follows.
    const tEnd = Date.now() + 30_000;
    while (lastMig.get(g.vmID)?.['status'] === 'in_progress' && Date.now() < tEnd) await sleep(50);
    const st = await cA.call('VM.getMigrationStatus', { vmID: g.vmID });
    t.equal(st.status, 'done', 'getMigrationStatus: done');
    t.equal(st.progress, 100, 'progress 100 once done');
    t.comment(`migration total ${totalMs.toFixed(0)} ms (agent: ${st.totalMs} ms), libvirt downtime ${st.downtime ?? '?'} ms`);
    t.ok(typeof st.downtime === 'number' && st.downtime >= 0, "getMigrationStatus reports libvirt's downtime (JOB_COMPLETED)");

    const seq = progress.get(g.vmID) ?? [];
    t.ok(seq.length >= 2, `${seq.length} VM_migration_status events: ${seq.join(',')}`);
    t.ok(seq.every((p, i) => i === 0 || p >= seq[i - 1]!), 'progress never went down');
    t.ok(seq.slice(0, -1).every((p) => p <= 99), 'held at or below 99 until done');
    t.equal(seq.at(-1), 100, 'the last event says 100');
    t.equal(lastMig.get(g.vmID)?.['status'], 'done', 'the last event says done');

    // The guest on B: the counter goes on from where it was on A, with no boot marker.
    const lastA = Math.max(...ticks(serialOn(hA, g.spec.name)));
    await sleep(2_000);
    const serialB = serialOn(hB, g.spec.name);
    const b1 = ticks(serialB);
    await sleep(1_500);
    const b2 = ticks(serialB);
    t.ok(b1.length > 0, `B's serial has ticks (${b1[0]} .. ${b1.at(-1)}); A's last was ${lastA}`);
    t.ok(b1[0]! > lastA - 5 && b1[0]! <= lastA + 50, `the counter on B continues from A's (first on B ${b1[0]}, last on A ${lastA})`);
    t.ok(b2.at(-1)! > b1.at(-1)!, `and keeps counting on B (${b1.at(-1)} -> ${b2.at(-1)})`);
    t.notMatch(readFileSync(serialB, 'latin1'), /LAB-BOOT-OK/, 'no boot marker on B: the guest did not restart');
    t.same(await onB(g.spec.name), [g.spec.name], 'B runs the domain');
    const list = (await cA.call('Host.getVMList', {})).vmList.filter((v) => v.vmId === g.vmID);
    t.equal(list[0]?.status, 'Down', 'A lists it Down until the engine destroys it');
    await cA.call('VM.destroy', { vmID: g.vmID });
    await cB.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('a cancel in mid-copy leaves the VM Up on A, and B holds no domain', async (t) => {
    const g = await startOnA('hv-it-mig-cancel');
    await waitForSerialMarker(serialOn(hA, g.spec.name), 'LAB-TICK 5', 120_000);
    // 1 MiB/s: 128 MiB of guest memory takes minutes, so the copy is surely under way when we cancel.
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 1 } });
    const until = Date.now() + 60_000;
    let st = await cA.call('VM.getMigrationStatus', { vmID: g.vmID });
    while (!(st.dataRemaining! > 0) && st.status === 'in_progress' && Date.now() < until) {
      await sleep(200);
      st = await cA.call('VM.getMigrationStatus', { vmID: g.vmID });
    }
    t.equal(st.status, 'in_progress', `libvirt's copy is under way (${st.dataRemaining} bytes remaining, progress ${st.progress})`);
    t.ok(watchB.statuses(g.vmID).includes('Migration Destination'), 'B prepared the VM as Migration Destination');
    t.ok((await onB(g.spec.name)).length === 1, 'B holds the incoming domain while it copies');
    await cA.call('VM.migrateChangeParams', { vmID: g.vmID, params: { maxBandwidth: 2 } });
    t.pass('migrateChangeParams changed the bandwidth of the running migration');
    const tc = performance.now();
    await cA.call('VM.migrateCancel', { vmID: g.vmID });
    await watchA.wait(g.vmID, 'Up', 60_000, tc);
    const end = await cA.call('VM.getMigrationStatus', { vmID: g.vmID });
    t.equal(end.status, 'failed', `getMigrationStatus: failed (${end.error?.message})`);
    t.equal(end.error?.step, 'cancelled', 'the error names the step: cancelled');
    t.equal(end.error?.code, 47, 'with code 47 (migCancelErr)');
    t.comment(`back Up on A ${(performance.now() - tc).toFixed(0)} ms after the cancel`);
    // B cleaned up: neither the agent nor libvirt has it.
    const tB = Date.now() + 30_000;
    while (Date.now() < tB && ((await cB.call('Host.getVMList', {})).vmList.some((v) => v.vmId === g.vmID) || (await onB(g.spec.name)).length)) await sleep(250);
    t.notOk((await cB.call('Host.getVMList', {})).vmList.some((v) => v.vmId === g.vmID), "B's agent does not list the VM");
    t.same(await onB(g.spec.name), [], 'libvirt on B holds no domain');
    const before = Math.max(...ticks(serialOn(hA, g.spec.name)));
    await sleep(1_500);
    const after = Math.max(...ticks(serialOn(hA, g.spec.name)));
    t.ok(after > before, `the guest keeps counting on A (${before} -> ${after})`);
    await t.rejects(cA.call('VM.migrateCancel', { vmID: g.vmID }), { code: 47 }, 'a second cancel: 47, nothing to cancel');
    await cA.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('a destination hook that fails: the error names migrationCreate, the VM stays Up on A, B keeps nothing', async (t) => {
    const g = await startOnA('hv-it-mig-hook', { refuse_migration: 'yes' });
    const tm = performance.now();
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst } });
    const until = Date.now() + 60_000;
    let st = await cA.call('VM.getMigrationStatus', { vmID: g.vmID });
    while (st.status === 'in_progress' && Date.now() < until) { await sleep(100); st = await cA.call('VM.getMigrationStatus', { vmID: g.vmID }); }
    t.equal(st.status, 'failed', `the migration failed: ${st.error?.message}`);
    t.equal(st.error?.step, 'migrationCreate', 'at the step migrationCreate');
    t.equal(st.error?.code, 78, 'with the hook error (78) the destination answered');
    t.match(st.error?.message ?? '', /refused by the test hook|before_vm_migrate_destination/, "the message carries the hook's reason");
    await watchA.wait(g.vmID, 'Up', 10_000, tm);
    t.equal((await cA.call('VM.getStats', { vmID: g.vmID })).statsList[0]?.status, 'Up', 'the VM is Up on A');
    t.notOk((await cB.call('Host.getVMList', {})).vmList.some((v) => v.vmId === g.vmID), 'B does not list the VM');
    t.same(await onB(g.spec.name), [], 'libvirt on B holds no domain');
    await cA.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('limits: a destination at its incoming limit answers migrateLimit (82); the source retries and migrates once a slot is free', async (t) => {
    const g = await startOnA('hv-it-mig-limit');
    const xml = (await cA.call('Host.dumpxmls', { vmList: [g.vmID] })).domxmls[g.vmID]!;
    // Two incoming migrations that never start (their source "died") hold B's 2 slots until incomingStartTimeoutMs.
    const fake = (): { vmID: string; xml: string } => {
      const id = randomUUID();
      return { vmID: id, xml: xml.replace(new RegExp(g.vmID, 'gi'), id).replace(/<name>[^<]*<\/name>/, `<name>hv-it-fake-${id.slice(0, 8)}</name>`) };
    };
    const [f1, f2, f3] = [fake(), fake(), fake()];
    for (const f of [f1, f2]) {
      const r = await cB.call('VM.migrationCreate', { vmID: f.vmID, params: { xml: f.xml } });
      t.equal(r.params.status, 'Migration Destination', `migrationCreate ${f.vmID.slice(0, 8)}: Migration Destination`);
    }
    const tHeld = performance.now();
    await t.rejects(cB.call('VM.migrationCreate', { vmID: f3.vmID, params: { xml: f3.xml } }), { code: 82 }, 'a third incoming migration: migrateLimit (82)');
    await t.rejects(cB.call('VM.migrationCreate', { vmID: f1.vmID, params: { xml: f1.xml } }), { code: 4 }, 'the same VM twice: exists (4)');
    const logStart = aA.logs.length;
    await cA.call('VM.migrate', { vmID: g.vmID, params: { dst, timeout: 120 } });
    const down = await watchA.wait(g.vmID, 'Down', 90_000);
    const waited = (performance.now() - tHeld) / 1000;
    t.equal(down['exitMessage'], 'migration succeeded', `migrated once B freed its slots (${waited.toFixed(1)} s after they were taken)`);
    const retries = aA.logs.slice(logStart).filter((l) => l.includes('destination busy (migrateLimit); retrying')).length;
    t.ok(retries >= 2, `A retried migrationCreate ${retries} times while B answered 82`);
    await watchB.wait(g.vmID, 'Up', 30_000);
    const listB = (await cB.call('Host.getVMList', {})).vmList.map((v) => v.vmId);
    t.notOk(listB.includes(f1.vmID) || listB.includes(f2.vmID), 'B dropped the two incoming migrations that never started');
    await cA.call('VM.destroy', { vmID: g.vmID });
    await cB.call('VM.destroy', { vmID: g.vmID });
  });
});
