// The binding's saved-state calls on the real qemu:///system (what hibernation builds on):
// Domain.save writes a running guest's RAM and device state to a file and stops it;
// Connection.restore starts it again from the file, and the guest goes on where it was:
// its serial counter continues past the last value before the save, with no second boot.
import t from 'tap';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Connection, enums } from '../../../agent/libvirt/index.js';
import { guestDomainXml, waitForSerialMarker } from '../../lab/guest.js';
import { dirtyTickerScript, labShWord, ticksIn } from '../../lab/workloads.js';
import { SYSTEM_URI, destroyGuestQuietly, guestName, makeTempDir, removeDir, waitUntil } from './qemu-helpers.js';

t.test('save stops a running guest into a state file; restore resumes it where it was', async (t) => {
  const name = guestName('save');
  const dir = await makeTempDir('save');
  const serial = join(dir, 'serial.log');
  const state = join(dir, 'state.sav');
  const conn = await Connection.open(SYSTEM_URI, { callTimeoutMs: 120_000 });
  t.teardown(async () => {
    await destroyGuestQuietly(name, conn);
    await conn.close().catch(() => {});
    await removeDir(dir);
  });
  await destroyGuestQuietly(name, conn);

  const dom = await conn.createXML(guestDomainXml({ name, serialPath: serial, cmdline: [labShWord(dirtyTickerScript({ dirtyMiBs: 0 }))] }));
  await waitForSerialMarker(serial, 'LAB-TICK 10', 120_000);
  const t0 = performance.now();
  await dom.save(state);
  const saveMs = performance.now() - t0;
  const before = ticksIn(readFileSync(serial, 'latin1'));
  const last = Math.max(...before);
  t.ok(existsSync(state) && statSync(state).size > 1024 * 1024, `the state file holds the guest (${(statSync(state).size / 1048576).toFixed(1)} MiB, saved in ${Math.round(saveMs)} ms)`);
  const gone = await conn.lookupByName(name).then(() => 'still there', (e: unknown) => e);
  t.ok(gone !== 'still there', 'the domain is gone once saved');

  const t1 = performance.now();
  await conn.restore(state);
  const restoreMs = performance.now() - t1;
  const back = await conn.lookupByName(name);
  t.equal(back.uuid, dom.uuid, `restored in ${Math.round(restoreMs)} ms, the same domain`);
  t.equal((await back.state()).state, enums.DomainState.RUNNING, 'running');
  // The serial file is opened anew (append off): what it shows now is from after the restore.
  const after = await waitUntil('ticks after the restore', () => {
    const n = ticksIn(readFileSync(serial, 'latin1')).filter((x) => x > last);
    return n.length >= 5 ? n : undefined;
  }, 60_000);
  t.ok(after[0]! > last && after[0]! <= last + 20, `the counter goes on from ${last}: ${after[0]}..${after.at(-1)}`);
  t.notMatch(readFileSync(serial, 'latin1'), /LAB-BOOT-OK/, 'no second boot');

  const missing = await conn.restore(join(dir, 'nothing.sav')).catch((e: unknown) => e);
  t.ok(missing instanceof Error && /nothing\.sav/.test((missing as Error).message), `restoring from a missing file fails naming it: ${(missing as Error).message}`);
});
