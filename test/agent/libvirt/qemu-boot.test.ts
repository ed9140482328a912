// Integration: boot the tiny TCG guest on the real qemu:///system through our facade, and see its
// lifecycle through conn.subscribe('lifecycle').
import t from 'tap';
import { join } from 'node:path';
import { Connection, enums } from '../../../agent/libvirt/index.js';
import { guestDomainXml, waitForSerialMarker } from '../../lab/guest.js';
import { EventLog, SYSTEM_URI, destroyGuestQuietly, guestName, makeTempDir, removeDir } from './qemu-helpers.js';

const { DomainEventType, DomainEventStartedDetailType, DomainEventStoppedDetailType, DomainState } = enums;

t.test('a guest created with createXML boots to LAB-BOOT-OK, and lifecycle events report STARTED then (after destroy) STOPPED', async (t) => {
  const name = guestName('boot');
  const dir = await makeTempDir('boot');
  const serial = join(dir, 'serial.log');
  let conn: Connection | undefined;
  t.teardown(async () => {
    await destroyGuestQuietly(name, conn);
    await conn?.close().catch(() => {});
    await removeDir(dir);
  });

  conn = await Connection.open(SYSTEM_URI, { callTimeoutMs: 60_000 });
  await destroyGuestQuietly(name, conn); // a leftover of a crashed earlier run of this pid, however unlikely

  const lifecycle = new EventLog<'lifecycle'>(name);
  const sub = await conn.subscribe('lifecycle', lifecycle.listener);
  t.teardown(() => sub.close().catch(() => {}));

  const t0 = performance.now();
  const dom = await conn.createXML(guestDomainXml({ name, serialPath: serial }));
  t.equal(dom.name, name, 'createXML returns the new domain');
  t.ok(dom.id > 0, `a running domain has a runtime id (${dom.id})`);

  const started = await lifecycle.waitFor('lifecycle STARTED',
    (ev) => ev.event === DomainEventType.STARTED, 30_000);
  t.equal(started.ev.detail, DomainEventStartedDetailType.BOOTED, 'STARTED detail is BOOTED');
  t.equal(started.ev.domain.name, name, 'the event names the domain');
  t.equal(started.ev.domain.uuid, dom.uuid, 'the event carries the domain uuid');

  const boot = await waitForSerialMarker(serial, 'LAB-BOOT-OK', 120_000);
  t.match(boot.line, /^LAB-BOOT-OK uptime=\S+ vda=none$/, 'the guest reports a boot without a disk');
  t.comment(`boot to LAB-BOOT-OK: ${Math.round(performance.now() - t0)} ms after createXML was called`);

  const st = await dom.state();
  t.equal(st.state, DomainState.RUNNING, 'the booted domain is RUNNING');

  await dom.destroy();
  const stopped = await lifecycle.waitFor('lifecycle STOPPED',
    (ev) => ev.event === DomainEventType.STOPPED, 30_000);
  t.equal(stopped.ev.detail, DomainEventStoppedDetailType.DESTROYED, 'STOPPED detail is DESTROYED');
  t.ok(stopped.at > started.at, 'STOPPED arrives after STARTED');

  const kinds = lifecycle.events.map((r) => DomainEventType[r.ev.event]);
  t.same(kinds.filter((k) => k === 'STARTED' || k === 'STOPPED'), ['STARTED', 'STOPPED'],
    'exactly one STARTED and one STOPPED for the guest');
});
