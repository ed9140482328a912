// Where SPM tasks are kept, on real storage: the block master's tasks LV
// (real lvm2, activation=0, loop activation) with its two-copy slots, and the
// file master's tasks/ folder with whole-file writes.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlockStorageDomain } from '../../../agent/storage/block-domain.js';
import { blockDomainOptions } from '../../../agent/storage/index.js';
import { FileTaskStore } from '../../../agent/storage/tasks/file-store.js';
import { COPY_BYTES, SLOT_BYTES, SLOT_COUNT, SlotTaskStore } from '../../../agent/storage/tasks/slot-store.js';
import type { TaskRecord } from '../../../agent/storage/tasks/record.js';
import { storageLab, testLog } from './storage-lab.js';

const record = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  v: 1, id: randomUUID(), verb: 'Volume.create', params: { storagedomainID: randomUUID(), imageID: randomUUID(), volumeID: randomUUID() },
  state: 'running', code: 0, message: 'running', hostId: 1, lver: 3, createdAt: Date.now(), phases: [['wait', 0.5]], recovery: [], ...over,
});
const byId = (rs: TaskRecord[]) => Object.fromEntries(rs.map((r) => [r.id, r]));

t.test('block master: tasks live in the tasks LV; a torn write keeps the previous record; a full area answers 413', async (t) => {
  const lab = await storageLab('tasks-store');
  t.teardown(() => lab.cleanup());
  const pv = await lab.makePv(4);
  const s = lab.settings();
  const sd = randomUUID();
  const dom = await BlockStorageDomain.create(sd, { ...blockDomainOptions(s, lab.driver(), [pv], { log: testLog }), extentSizeMiB: 4, pvMetadataSizeMiB: 16 });
  t.notOk((await dom.lvm.lvs(sd)).some((l) => l.name === 'tasks'), 'a new domain has no tasks LV until an SPM needs it');
  const path = await dom.tasksArea();
  t.equal((await dom.lvm.lvs(sd, 'tasks'))[0]?.size, 8 * 1024 * 1024, 'the first SPM made the 8 MiB tasks LV');
  t.equal(await dom.tasksArea(), path, 'a second call finds it');
  t.equal((await dom.getStats()).volumeCount, 0, 'it is not counted as a volume');
  t.same(await dom.getVolumes(), [], 'nor listed as one');

  const store = await SlotTaskStore.open(path, testLog);
  t.same(await store.load(), [], 'a fresh (zeroed) LV is an empty task area');
  const a = record();
  const b = record({ verb: 'Image.delete' });
  await store.save(a);
  await store.save(b);
  await store.save({ ...a, state: 'finished', message: 'OK', result: { uuid: a.params.volumeID } });
  await store.close();

  // Another SPM (a fresh store, as after a restart) reads the same slots.
  const again = await SlotTaskStore.open(path, testLog);
  const loaded = byId(await again.load());
  t.same(Object.keys(loaded).sort(), [a.id, b.id].sort(), 'both tasks are found by a new reader');
  t.equal(loaded[a.id]!.state, 'finished', 'with the newest record of each');
  t.same(loaded[a.id]!.result, { uuid: a.params.volumeID });

  // Tear the newest copy of a's slot (slot 0): its previous record must come back.
  await again.close();
  const fh = await open(path, 'r+');
  const copies = await Promise.all([0, 1].map(async (i) => {
    const buf = Buffer.alloc(COPY_BYTES);
    await fh.read(buf, 0, COPY_BYTES, i * COPY_BYTES);
    return { i, seq: buf.readUInt32LE(8) };
  }));
  const newest = copies.sort((x, y) => y.seq - x.seq)[0]!;
  await fh.write(Buffer.alloc(64, 0xa5), 0, 64, newest.i * COPY_BYTES + 64); // garbage inside the JSON, as a torn write leaves
  await fh.sync();
  await fh.close();
  const afterTear = await SlotTaskStore.open(path, testLog);
  const torn = byId(await afterTear.load());
  t.equal(torn[a.id]?.state, 'running', 'a torn newest copy fails its CRC: the previous record (running) is used');
  t.equal(torn[b.id]?.verb, 'Image.delete', 'other slots are unaffected');

  await afterTear.remove(b.id);
  await afterTear.save({ ...a, state: 'recovered', code: 1011, message: 'recovered' });
  t.same((await afterTear.load()).map((r) => [r.id, r.state]), [[a.id, 'recovered']], 'a removed task is gone; the torn slot was rewritten');

  await t.rejects(afterTear.save(record({ message: 'x'.repeat(COPY_BYTES) })), { code: 413 }, 'a record larger than a slot copy is refused with 413');
  const fill: Promise<void>[] = [];
  for (let i = 0; i < SLOT_COUNT - 1; i++) fill.push(afterTear.save(record()));
  await Promise.all(fill);
  t.equal((await afterTear.load()).length, SLOT_COUNT, `${SLOT_COUNT} tasks fill the area (${SLOT_BYTES} bytes a slot)`);
  await t.rejects(afterTear.save(record()), { code: 413, message: /task area is full/ }, 'one more answers 413: clear finished tasks');
  await afterTear.close();
  await dom.remove();
});

t.test('file master: one whole file per task in master/tasks/; leftovers of a cut-short write are dropped, a corrupt record is set aside', async (t) => {
  const dir = join(t.testdir({}), 'master', 'tasks');
  const store = await FileTaskStore.open(dir, testLog);
  const a = record();
  await store.save(a);
  await store.save({ ...a, state: 'finished' });
  t.same(await readdir(dir), [`${a.id}.task`], 'one file, no temp files left');
  await writeFile(join(dir, `${randomUUID()}.task.123.tmp`), '{"v":1,"id":"half-writ');
  const bad = randomUUID();
  await writeFile(join(dir, `${bad}.task`), '{"v":1,"id":"not this one"}');
  const loaded = await (await FileTaskStore.open(dir, testLog)).load();
  t.same(loaded.map((r) => [r.id, r.state]), [[a.id, 'finished']], 'the newest whole record is loaded');
  t.same((await readdir(dir)).sort(), [`${a.id}.task`, `${bad}.task.bad`].sort(), 'the temp file is removed; the corrupt record is renamed .bad, not lost');
  await store.remove(a.id);
  t.same((await readdir(dir)).filter((n) => n.endsWith('.task')), [], 'remove deletes the file');
});
