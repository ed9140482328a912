// The migration workload script, run by the host's own sh on a tmp dir: it
// ticks every 100 ms, and rewrites memory at about the rate asked, which it
// reports itself; bad rates are refused before a guest is booted with them.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirtyRateIn, dirtyTickerScript, labShWord, ticksIn } from './workloads.js';

async function runFor(script: string, ms: number): Promise<string> {
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString('latin1'); });
  await new Promise((r) => setTimeout(r, ms));
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => child.once('close', r));
  return out;
}

t.test('the dirty ticker counts every 100 ms and rewrites memory at about the asked rate, which it measures itself', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-dirty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = await runFor(dirtyTickerScript({ dirtyMiBs: 10, regionMiB: 16, dir }), 3_500);
  t.match(out, /LAB-DIRTY-READY/, 'the region was filled first');
  const ticks = ticksIn(out);
  t.ok(ticks.length >= 15, `${ticks.length} ticks in about 3 s`);
  t.same(ticks, ticks.map((_, i) => i), 'the counter goes up by one, from 0');
  const rate = dirtyRateIn(out);
  t.ok(rate !== undefined && rate >= 4 && rate <= 11, `dirty rate ${rate?.toFixed(1)} MiB/s for 10 asked (sleeps add to each round)`);
});

t.test('without a dirty rate the script only ticks', async (t) => {
  const out = await runFor(dirtyTickerScript({ dirtyMiBs: 0 }), 600);
  t.notMatch(out, /LAB-DIRTY/, 'no dirtier');
  t.ok(ticksIn(out).length >= 3, 'ticks');
});

t.test('rates and regions out of range are refused; the lab.sh word is base64 of the script', async (t) => {
  t.throws(() => dirtyTickerScript({ dirtyMiBs: 81 }), RangeError);
  t.throws(() => dirtyTickerScript({ dirtyMiBs: -1 }), RangeError);
  t.throws(() => dirtyTickerScript({ dirtyMiBs: 1, regionMiB: 0 }), RangeError);
  t.equal(Buffer.from(labShWord('echo hi').slice('lab.sh='.length), 'base64').toString(), 'echo hi');
});
