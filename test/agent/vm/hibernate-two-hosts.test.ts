// Issue 13 must-show 9 at the agent: a guest hibernated on lab host A (its state in the shared
// storage directory) is resumed on lab host B with VM.create + restoreState, and its serial
// counter goes on from where it stopped on A, with no new boot; the four hibernate hooks run in
// order across the two hosts (each host's hooks append to one shared log).
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { labDown, labUp, SHARED_DIR, type LabHost } from '../../lab/multihost/lab.js';
import { GUEST_DIR, waitForSerialMarker } from '../../lab/guest.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { bounded, StatusWatch, testConfig, type VmSpecParam } from '../harness.js';
import { connectLabClient, spawnLabAgent, type LabAgent } from '../storage/lab-agents.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { ExitReason } from '../../../api/types.js';

const SERIAL_DIR = '/var/log/libvirt/qemu';
const POINTS = ['before_vm_hibernate', 'after_vm_hibernate', 'before_vm_dehibernate', 'after_vm_dehibernate'] as const;
/** The guest's serial log as host `h` has it (its private /var/log/libvirt), from the main namespace. */
const serialOn = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);

t.test('hibernated on host A, resumed on host B: the guest goes on counting; the hooks ran in order', async (t) => {
  const agents: LabAgent[] = [];
  const clients: HostvisorClient[] = [];
  const vmID = randomUUID();
  const work = join(SHARED_DIR, `hibernate-${process.pid}`);
  t.teardown(async () => {
    for (const c of clients) await bounded('VM.destroy', c.call('VM.destroy', { vmID }).catch(() => {}), 30_000);
    for (const c of clients) await bounded('client close', c.close(), 10_000);
    for (const a of agents) await bounded('agent stop', a.stop(), 30_000);
    await bounded('labDown', labDown(), 120_000);
    rmSync(work, { recursive: true, force: true });
  });
  const [hA, hB] = await labUp(2) as [LabHost, LabHost];
  mkdirSync(work, { recursive: true });
  const order = join(work, 'hooks.log');
  const start = async (h: LabHost): Promise<HostvisorClient> => {
    await h.exec(['mkdir', '-p', SERIAL_DIR]);
    const config = await testConfig({ 'rpc.host': '0.0.0.0', 'rpc.port': 54321, 'virt.domainType': 'qemu' });
    for (const p of POINTS) {
      mkdirSync(join(config['hooks.dir'], p), { recursive: true });
      writeFileSync(join(config['hooks.dir'], p, '50_record'), `#!/bin/sh\necho "${p} $(hostname)" >> ${order}\n`, { mode: 0o755 });
    }
    const a = await spawnLabAgent(h, config, { echo: !!process.env['HV_TEST_LOG'] });
    agents.push(a);
    const c = await connectLabClient(a);
    clients.push(c);
    return c;
  };
  const [cA, cB] = await Promise.all([start(hA), start(hB)]);
  const watchA = new StatusWatch(cA);
  const watchB = new StatusWatch(cB);
  const name = 'hv-it-hib2';
  const spec: VmSpecParam = {
    name, memoryMiB: 128, vcpus: 1, domainType: 'qemu',
    kernel: join(GUEST_DIR, 'vmlinux'), initrd: join(GUEST_DIR, 'initrd.img'),
    cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', labShWord(dirtyTickerScript({ dirtyMiBs: 0 }))].join(' '),
    serialLog: join(SERIAL_DIR, `${name}.serial`),
  };
  await cA.call('VM.create', { vmID, spec });
  await watchA.wait(vmID, 'Up', 60_000);
  await waitForSerialMarker(serialOn(hA, name), 'LAB-TICK 10', 120_000);

  const state = join(work, 'state.sav');
  const t0 = performance.now();
  await cA.call('VM.hibernate', { vmID, stateVolume: { path: state } });
  const down = await watchA.wait(vmID, 'Down', 120_000);
  const saveMs = performance.now() - t0;
  const last = Math.max(...ticksIn(readFileSync(serialOn(hA, name), 'latin1')));
  t.equal(down.exitReason, ExitReason.SAVE_STATE_SUCCEEDED, `A: Down, hibernated in ${Math.round(saveMs)} ms at tick ${last}`);
  t.ok(existsSync(state), 'the state is on the shared storage');

  const t1 = performance.now();
  await cB.call('VM.create', { vmID, spec, restoreState: { path: state } });
  await watchB.wait(vmID, 'Up', 120_000);
  t.pass(`B: Up ${Math.round(performance.now() - t1)} ms after VM.create with restoreState`);
  const onB = await waitForSerialMarker(serialOn(hB, name), `LAB-TICK ${last + 3}`, 60_000).then(() => ticksIn(readFileSync(serialOn(hB, name), 'latin1')));
  t.ok(onB.length > 0 && onB[0]! > last && onB[0]! <= last + 20, `B's counter goes on from A's ${last}: ${onB[0]}..${onB.at(-1)}`);
  t.notMatch(readFileSync(serialOn(hB, name), 'latin1'), /LAB-BOOT-OK/, 'no boot on B');
  t.notOk((await cA.call('Host.getVMList', {})).vmList.some((v) => v.vmId === vmID), 'A no longer has it');
  const hooks = readFileSync(order, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]);
  t.same(hooks, [...POINTS], 'the four hooks, in order');
  const hosts = readFileSync(order, 'utf8').trim().split('\n').map((l) => l.split(' ')[1]);
  t.ok(hosts[0] === hosts[1] && hosts[2] === hosts[3] && hosts[0] !== hosts[2], `hibernate hooks on A (${hosts[0]}), dehibernate hooks on B (${hosts[2]})`);
});
