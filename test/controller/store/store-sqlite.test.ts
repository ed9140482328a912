// The store suite on SQLite (better-sqlite3, WAL), each test on its own database file.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Store } from '../../../controller/store/store.js';
import { storeSuite } from './store-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'hv-sqlite-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
let path = '';

storeSuite(t, 'sqlite', (o) => { path = join(dir, `c${++n}.db`); return Store.open({ engine: 'sqlite', path, ...o }); },
  () => ({ engine: 'sqlite', path }));

t.test('sqlite: the database file is in WAL mode, in a directory the store creates', async (t) => {
  const file = join(dir, 'nested', 'deeper', 'controller.db');
  const s = await Store.open({ engine: 'sqlite', path: file });
  await s.close();
  const raw = new BetterSqlite3(file, { readonly: true });
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  raw.close();
});
