// The store suite on a real PostgreSQL server (Debian's postgresql), started for this file on a
// unix socket in a temp dir and stopped at the end; each test gets its own database.
import t from 'tap';
import type pg from 'pg';
import { Store } from '../../../controller/store/store.js';
import { startPostgres } from './pg-cluster.js';
import { storeSuite } from './store-suite.js';

const server = await startPostgres();
if ('skip' in server) {
  t.plan(0, server.skip);
} else {
  t.teardown(() => server.stop());
  let n = 0;
  let connection: pg.PoolConfig = {};
  storeSuite(t, 'postgres', async (o) => {
    connection = await server.database(`suite${++n}`);
    return Store.open({ engine: 'postgres', connection, ...o });
  }, () => ({ engine: 'postgres', connection }));

  t.test('postgres: two controllers opening one new database at once migrate it once', async (t) => {
    const connection = await server.database('race');
    const [a, b] = await Promise.all([Store.open({ engine: 'postgres', connection }), Store.open({ engine: 'postgres', connection })]);
    t.same((await a.clusters.list()).map((c) => c.name), ['default'], 'one default cluster');
    await Promise.all([a.close(), b.close()]);
  });
}
