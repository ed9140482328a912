// The cache modes of a copy (agent/storage/copy-cache.ts): O_DIRECT (`none`)
// where every image opens with it, else `writeback` on that side with the
// reason logged. /proc refuses O_DIRECT (EINVAL), as a file system without
// it does; a file in the test's folder takes it.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyCacheModes, directIoRefusal } from '../../../agent/storage/copy-cache.js';
import { createLogger } from '../../../agent/log.js';

const file = join(t.testdir(), 'image');
writeFileSync(file, Buffer.alloc(8192));
const refusing = '/proc/self/status';

t.test('a file on a disk file system opens with O_DIRECT; a /proc file is refused with the reason', async (t) => {
  t.equal(await directIoRefusal(file, 5_000), undefined, 'no refusal for a regular file');
  t.match(await directIoRefusal(refusing, 5_000), /O_DIRECT failed: EINVAL/, 'refused, with errno');
  t.match(await directIoRefusal(join(t.testdir(), 'missing'), 5_000), /ENOENT/, 'a missing image is a refusal too (qemu-img then reports it)');
});

t.test('copyCacheModes: none where O_DIRECT works, writeback on the side that refuses it, logged with the path and reason', async (t) => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', sink: (l) => lines.push(l) });
  const what = { from: 'a', to: 'b' };
  t.same(await copyCacheModes([file, file], file, { timeoutMs: 5_000, log, what }), { source: 'none', target: 'none' }, 'all O_DIRECT: none, none');
  t.same(lines, [], 'nothing logged');
  t.same(await copyCacheModes([file, refusing], file, { timeoutMs: 5_000, log, what }), { source: 'writeback', target: 'none' }, 'one image of the chain refuses: the source side falls back');
  t.same(await copyCacheModes([file], refusing, { timeoutMs: 5_000, log, what }), { source: 'none', target: 'writeback' }, 'the target refuses: the target side falls back');
  const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(logged.map((l) => [l.level, l.side, l.path, l.cache, l.from]), [['warn', 'source', refusing, 'writeback', 'a'], ['warn', 'target', refusing, 'writeback', 'a']], 'each fallback logged as a warning naming side, path and mode');
  t.ok(logged.every((l) => String(l.reason).includes('EINVAL')), 'with the reason');
});
