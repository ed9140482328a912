// HostStatsSampler: exact numbers from fixture /proc files written to a temp dir, the parsers'
// edge cases, and one sanity pass over the real /proc.
import t, { type Test } from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Value } from '@sinclair/typebox/value';
import { Methods } from '../../../api/schema.js';
import { HostStatsSampler, parseNetDev, parseProcStat, parseMeminfo } from '../../../agent/host/host-stats.js';

interface Fixture { stat: string; meminfo: string; loadavg: string; netdev: string; uptime: string }

function writeProc(root: string, f: Fixture): void {
  mkdirSync(join(root, 'net'), { recursive: true });
  writeFileSync(join(root, 'stat'), f.stat);
  writeFileSync(join(root, 'meminfo'), f.meminfo);
  writeFileSync(join(root, 'loadavg'), f.loadavg);
  writeFileSync(join(root, 'net', 'dev'), f.netdev);
  writeFileSync(join(root, 'uptime'), f.uptime);
}

const NETDEV_HEAD = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
`;
const nic = (name: string, rx: number, tx: number): string =>
  `${name.padStart(6)}: ${rx} 10 0 0 0 0 0 0 ${tx} 7 0 0 0 0 0 0\n`;

const MEMINFO = `MemTotal:       16384000 kB
MemFree:         4096000 kB
MemAvailable:    8192000 kB
Buffers:          123456 kB
HugePages_Total:       0
`;

const SAMPLE1: Fixture = {
  stat: 'cpu  1000 100 500 8000 200 50 50 100 30 0\ncpu0 500 50 250 4000 100 25 25 50 15 0\nintr 12345\n',
  meminfo: MEMINFO,
  loadavg: '0.52 0.58 0.59 1/166 23842\n',
  netdev: NETDEV_HEAD + nic('lo', 3193, 3193) + nic('eth0', 1000, 500) + nic('br0', 5000, 5000),
  uptime: '1628.58 2577.61\n',
};
// Over 10 s: user +300, nice +100, system +150, idle +300, iowait +50, irq +25, softirq +25,
// steal +50 (1000 ticks in all; guest +100 is already inside user and must not count twice).
const SAMPLE2: Fixture = {
  stat: 'cpu  1300 200 650 8300 250 75 75 150 130 0\ncpu0 650 100 325 4150 125 37 37 75 65 0\nintr 23456\n',
  meminfo: MEMINFO.replace('4096000', '2048000'),
  loadavg: '1.10 0.70 0.61 2/170 23900\n',
  netdev: NETDEV_HEAD + nic('lo', 3193, 3193) + nic('eth0', 21000, 5500) + nic('br0', 100, 6000) + nic('vnet0', 900, 900),
  uptime: '1638.58 2590.00\n',
};

function fixtureSampler(t: Test): { root: string; sampler: HostStatsSampler; clock: { ms: number } } {
  const root = mkdtempSync(join(tmpdir(), 'hv-proc-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const clock = { ms: 1_000 };
  return { root, clock, sampler: new HostStatsSampler({ procRoot: root, now: () => clock.ms }) };
}

t.test('with two samples 10 s apart, cpu % and NIC rates are exact over that interval', async (t) => {
  const { root, sampler, clock } = fixtureSampler(t);
  writeProc(root, SAMPLE1);
  await sampler.sample();
  writeProc(root, SAMPLE2);
  clock.ms = 11_000;
  await sampler.sample();
  t.strictSame(sampler.current(3, 2), {
    cpuUser: 40, // (user 300 + nice 100) / 1000
    cpuSys: 20, // (system 150 + irq 25 + softirq 25) / 1000
    cpuIdle: 40, // the rest: idle, iowait and steal
    memTotal: 16000, memFree: 2000, memAvailable: 8000,
    loadAvg: [1.1, 0.7, 0.61],
    network: {
      lo: { rxBytes: 3193, txBytes: 3193, rxRate: 0, txRate: 0 },
      eth0: { rxBytes: 21000, txBytes: 5500, rxRate: 2000, txRate: 500 },
      br0: { rxBytes: 100, txBytes: 6000, rxRate: 0, txRate: 100 }, // rx counter went back: no rate
      vnet0: { rxBytes: 900, txBytes: 900, rxRate: 0, txRate: 0 }, // new interface: no rate yet
    },
    uptime: 1638.58,
    vmCount: 3, vmActive: 2,
  });
});

t.test('with only one sample, cpu % and NIC rates are 0 and the absolute values are reported', async (t) => {
  const { root, sampler } = fixtureSampler(t);
  writeProc(root, SAMPLE1);
  t.throws(() => sampler.current(0, 0), /before the first sample/, 'current() before any sample is an error');
  t.equal(sampler.hasSample, false);
  await sampler.sample();
  const s = sampler.current(0, 0);
  t.strictSame([s.cpuUser, s.cpuSys, s.cpuIdle], [0, 0, 0]);
  t.strictSame(s.network.eth0, { rxBytes: 1000, txBytes: 500, rxRate: 0, txRate: 0 });
  t.strictSame([s.memTotal, s.memFree, s.memAvailable, s.uptime], [16000, 4000, 8000, 1628.58]);
  t.strictSame(s.loadAvg, [0.52, 0.58, 0.59]);
});

t.test('a third sample makes the rates cover only the interval since the second', async (t) => {
  const { root, sampler, clock } = fixtureSampler(t);
  writeProc(root, SAMPLE1);
  await sampler.sample();
  writeProc(root, SAMPLE2);
  clock.ms = 11_000;
  await sampler.sample();
  writeProc(root, { ...SAMPLE2, netdev: NETDEV_HEAD + nic('eth0', 22000, 5500) });
  clock.ms = 15_000;
  await sampler.sample();
  const s = sampler.current(0, 0);
  t.strictSame(s.network, { eth0: { rxBytes: 22000, txBytes: 5500, rxRate: 250, txRate: 0 } }, 'vanished interfaces are gone');
  t.strictSame([s.cpuUser, s.cpuSys, s.cpuIdle], [0, 0, 0], 'no ticks elapsed: no cpu figures');
});

t.test('concurrent sample() calls share one read, so the previous sample is not lost', async (t) => {
  const { root, sampler, clock } = fixtureSampler(t);
  writeProc(root, SAMPLE1);
  await sampler.sample();
  writeProc(root, SAMPLE2);
  clock.ms = 11_000;
  const [a, b] = await Promise.all([sampler.sample(), sampler.sample()]);
  t.equal(a, b);
  t.equal(sampler.current(0, 0).cpuUser, 40);
});

t.test('a missing /proc file makes sample() reject and keeps the last good sample', async (t) => {
  const { root, sampler } = fixtureSampler(t);
  writeProc(root, SAMPLE1);
  await sampler.sample();
  rmSync(join(root, 'meminfo'));
  await t.rejects(sampler.sample(), { code: 'ENOENT' });
  t.equal(sampler.current(0, 0).memTotal, 16000);
});

t.test('the parsers accept older formats and reject garbage', async (t) => {
  t.strictSame(parseNetDev(`${NETDEV_HEAD}eth0:123 1 0 0 0 0 0 0 456 1 0 0 0 0 0 0\n`), { eth0: { rxBytes: 123, txBytes: 456 } },
    'no space after the colon (large counters on old kernels)');
  t.strictSame(parseProcStat('cpu 1 2 3 4\n'), { user: 1, nice: 2, system: 3, idle: 4, iowait: 0, irq: 0, softirq: 0, steal: 0 },
    'pre-2.6 cpu line without iowait and later fields');
  t.throws(() => parseProcStat('cpu0 1 2 3 4\n'), /no aggregate cpu line/);
  t.throws(() => parseMeminfo('MemTotal: 1 kB\nMemFree: 1 kB\n'), /no MemAvailable/);
});

t.test('one sample of the real /proc gives sane absolute values; a second gives cpu % adding up to 100', async (t) => {
  const sampler = new HostStatsSampler();
  await sampler.sample();
  const s = sampler.current(0, 0);
  t.ok(Value.Check(Methods['Host.getStats'].result, s), 'the result matches the API schema');
  t.ok(s.memTotal > 0 && s.memAvailable <= s.memTotal && s.memFree <= s.memTotal, `memory ${JSON.stringify([s.memTotal, s.memFree, s.memAvailable])} MiB`);
  t.equal(s.loadAvg.length, 3);
  t.ok(s.loadAvg.every((x) => x >= 0));
  t.ok('lo' in s.network, 'loopback is listed');
  t.ok(s.uptime > 0);
  t.strictSame([s.cpuUser, s.cpuSys, s.cpuIdle], [0, 0, 0]);
  await sleep(300);
  await sampler.sample();
  const s2 = sampler.current(0, 0);
  const sum = s2.cpuUser + s2.cpuSys + s2.cpuIdle;
  t.ok(Math.abs(sum - 100) <= 0.02, `cpu ${s2.cpuUser}+${s2.cpuSys}+${s2.cpuIdle} = 100 %`);
  t.ok(Object.values(s2.network).every((n) => n.rxRate >= 0 && n.txRate >= 0), 'rates are never negative');
});
