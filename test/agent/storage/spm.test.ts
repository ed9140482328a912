// The SPM role on a real sanlock daemon (started with the lab's shim).
import t from 'tap';
import { closeSync, mkdtempSync, openSync, ftruncateSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Sanlock } from '../../../agent/storage/sanlock.js';
import { SpmRole } from '../../../agent/storage/spm.js';
import { silentLogger } from '../../../agent/log.js';
import { UnavailableError } from '../../../api/errors.js';
import { ensureSanlockDaemon, sanlockUnavailable } from './sanlock-daemon.js';

const MiB = 1024 * 1024;

const why = await sanlockUnavailable();

t.test('SPM role: exactly one of two contenders becomes SPM; lver grows per start; checks before writes', { skip: why ?? false }, async (t) => {
  const daemon = await ensureSanlockDaemon();
  t.teardown(() => daemon.stop());
  const sanlock = new Sanlock();
  // /var/tmp: sanlock opens lease files with O_DIRECT, which tmpfs refuses.
  const dir = mkdtempSync('/var/tmp/hostvisor-spm-');
  const area = { lockspace: `hvspm${process.pid}`, idsPath: join(dir, 'ids'), leasesPath: join(dir, 'leases'), leaseOffset: MiB };
  for (const [f, size] of [[area.idsPath, MiB], [area.leasesPath, 2 * MiB]] as const) {
    const fd = openSync(f, 'w'); ftruncateSync(fd, size); closeSync(fd);
  }
  await sanlock.directInitLockspace(area.lockspace, area.idsPath, 0, { ioTimeoutSec: 1 });
  await sanlock.directInitResource(area.lockspace, 'SDM', area.leasesPath, MiB);
  const lost: string[] = [];
  const mk = () => new SpmRole({ sanlock, hostId: 1, area, ioTimeoutSec: 1, watchIntervalMs: 500, log: silentLogger, onLost: (r) => lost.push(r) });
  const a = mk(), b = mk();
  t.teardown(async () => {
    await a.close(); await b.close();
    await sanlock.remLockspace(area.lockspace, 1, area.idsPath, 0).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  t.same(await a.status(), { spmStatus: 'Free', spmId: -1, spmLver: -1 }, 'nobody is SPM yet');
  const results = await Promise.allSettled([a.spmStart(), b.spmStart()]);
  const ok = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.equal(ok.length, 1, 'exactly one spmStart succeeds');
  t.type(failed[0]?.reason, UnavailableError, 'the other gets unavailable (40)');
  t.match(String(failed[0]?.reason?.message), /another host is SPM/);
  const [spm, other] = a.isSpm ? [a, b] : [b, a];
  t.equal(spm.currentLver, 1, 'first start: lver 1');
  t.same(await other.status(), { spmStatus: 'Free', spmId: 1, spmLver: 1 }, 'others are Free and see who holds it');
  t.equal(await spm.assertSpm(), 1, 'the SPM passes the check before a write');
  await t.rejects(other.assertSpm(), UnavailableError, 'a non-SPM fails it');

  await spm.spmStop();
  t.equal(await other.spmStart(), 2, 'the next spmStart bumps lver to 2');
  await t.rejects(spm.assertSpm(), UnavailableError, 'the old SPM may not write');
  t.same(lost, [], 'no lease was lost along the way');
});
