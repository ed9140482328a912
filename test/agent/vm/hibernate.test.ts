// Hibernation through the agent's API on the real qemu:///system: VM.hibernate answers at once,
// the VM goes Saving State then Down with exit reason 10 and its state file written; VM.create
// with restoreState resumes it and the guest's serial counter goes on from where it stopped, with
// no new boot. The four hibernate hooks run, in order. A VM that is not running is refused (1003),
// and a state path that cannot be written leaves the VM running.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitReason } from '../../../api/types.js';
import { connectClient, startAgent, StatusWatch, tinyGuest } from '../harness.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { makeTempDir, removeDir, waitUntil } from '../libvirt/qemu-helpers.js';

const POINTS = ['before_vm_hibernate', 'after_vm_hibernate', 'before_vm_dehibernate', 'after_vm_dehibernate'] as const;

t.test('a hibernated VM resumes from its state where it stopped; the four hooks run in order', async (t) => {
  const dir = await makeTempDir('hibernate');
  const order = join(dir, 'hooks.log');
  const { config, stop } = await startAgent({ 'hooks.dir': join(dir, 'hooks') });
  t.teardown(async () => { await stop(); await removeDir(dir); });
  // Hooks placed after start: the agent watches the directory.
  for (const p of POINTS) {
    mkdirSync(join(dir, 'hooks', p), { recursive: true });
    // Each hook records its point, and whether its domain XML names the VM.
    writeFileSync(join(dir, 'hooks', p, '50_record'), `#!/bin/sh\necho ${p} >> ${order}\ngrep -q '<name>hv-it-hibernate</name>' "$_hook_domxml" && echo ${p} has-xml >> ${order}.xml\n`, { mode: 0o755 });
  }
  const client = await connectClient(config);
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  const g = tinyGuest('hv-it-hibernate', { cmdline: [labShWord(dirtyTickerScript({ dirtyMiBs: 0 }))] });
  t.teardown(() => client.call('VM.destroy', { vmID: g.vmID }).catch(() => {}));

  const refused = await client.call('VM.hibernate', { vmID: g.vmID, stateVolume: { path: join(dir, 'x') } }).catch((e: { code: number }) => e);
  t.equal((refused as { code: number }).code, 1, 'an unknown VM: noVM (1)');

  await client.call('VM.create', { vmID: g.vmID, spec: g.spec });
  await watch.wait(g.vmID, 'Up', 60_000);
  await waitForSerialMarker(g.serial, 'LAB-TICK 10', 120_000);

  const bad = await client.call('VM.hibernate', { vmID: g.vmID, stateVolume: { path: join(dir, 'no-such-dir', 'state') } });
  t.same(bad, {}, 'a state path that cannot be written is still accepted (the save runs after the answer)');
  await waitUntil('the failed save leaves it Up', () => (watch.statuses(g.vmID).includes('Saving State') && watch.statuses(g.vmID).at(-1) === 'Up' ? true : undefined), 60_000);
  t.pass(`the failed save left the VM Up: ${watch.statuses(g.vmID).join(' -> ')}`);

  const state = join(dir, 'state.sav');
  const t0 = performance.now();
  t.same(await client.call('VM.hibernate', { vmID: g.vmID, stateVolume: { path: state } }), {}, 'VM.hibernate answers at once');
  const down = await watch.wait(g.vmID, 'Down', 120_000, t0);
  const lastTick = Math.max(...ticksIn(readFileSync(g.serial, 'latin1')));
  t.same([down.exitCode, down.exitReason], [0, ExitReason.SAVE_STATE_SUCCEEDED], `Down with exit reason 10 (${down.exitMessage}) ${Math.round(performance.now() - t0)} ms later`);
  t.ok(statSync(state).size > 1024 * 1024, `the state file was written (${(statSync(state).size / 1048576).toFixed(1)} MiB)`);
  t.notOk((await client.call('Host.getVMList', {})).vmList.some((v) => v.vmId === g.vmID), 'the agent no longer lists it');
  const again = await client.call('VM.hibernate', { vmID: g.vmID, stateVolume: { path: state } }).catch((e: { code: number }) => e);
  t.equal((again as { code: number }).code, 1, 'hibernating it again: noVM (1)');

  const t1 = performance.now();
  await client.call('VM.create', { vmID: g.vmID, spec: g.spec, restoreState: { path: state } });
  await watch.wait(g.vmID, 'Up', 120_000, t1);
  t.ok(watch.statuses(g.vmID).includes('Restoring State'), `resumed: ${watch.statuses(g.vmID).slice(-3).join(' -> ')} in ${Math.round(performance.now() - t1)} ms`);
  const after = await waitUntil('ticks after the resume', () => {
    const n = ticksIn(readFileSync(g.serial, 'latin1')).filter((x) => x > lastTick);
    return n.length >= 3 ? n : undefined;
  }, 60_000);
  t.ok(after[0]! <= lastTick + 20, `the counter goes on from ${lastTick}: ${after[0]}..${after.at(-1)}`);
  t.notMatch(readFileSync(g.serial, 'latin1'), /LAB-BOOT-OK/, 'no new boot');
  const hooks = readFileSync(order, 'utf8').trim().split('\n');
  t.same(hooks, ['before_vm_hibernate', 'before_vm_hibernate', 'after_vm_hibernate', 'before_vm_dehibernate', 'after_vm_dehibernate'],
    'hooks: before_vm_hibernate for the failed try, then the four in order');
  t.same(readFileSync(`${order}.xml`, 'utf8').trim().split('\n').map((l) => l.split(' ')[0]), ['before_vm_hibernate', 'before_vm_hibernate', 'after_vm_hibernate', 'before_vm_dehibernate', 'after_vm_dehibernate'],
    "each hook was given the VM's domain XML (before_vm_dehibernate: the one built from the spec)");
});
