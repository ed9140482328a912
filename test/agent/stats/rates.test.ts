// Unit: the pure stats computation (rates.ts) on hand-made raw bulk-stats samples.
import t from 'tap';
import { Value } from '@sinclair/typebox/value';
import { DiskStats, NicStats } from '../../../api/types.js';
import {
  advanceHistory, computeAllStats, computeVmStats, devicePrefixes, type RawSample, type RawStats,
} from '../../../agent/stats/rates.js';

const UUID_A = '11111111-2222-3333-4444-555555555555';
const UUID_B = '66666666-7777-8888-9999-000000000000';
const MiB = 1024 * 1024;

function sample(time: number, stats: RawStats, uuid = UUID_A, name = 'vm-a'): RawSample {
  return { time, name, uuid, stats };
}

// t = 1000 ms, then t = 3000 ms: a 2 s interval.
const PREV: RawStats = {
  'state.state': 1,
  'cpu.time': 1_000_000_000, 'cpu.user': 600_000_000, 'cpu.system': 200_000_000,
  'vcpu.current': 2, 'vcpu.maximum': 2, 'balloon.current': 1_048_576,
  'block.count': 2,
  'block.0.name': 'vda', 'block.0.rd.bytes': 1000, 'block.0.rd.reqs': 10, 'block.0.rd.times': 5_000_000,
  'block.0.wr.bytes': 2000, 'block.0.wr.reqs': 4, 'block.0.wr.times': 8_000_000,
  'block.0.capacity': 1024 * MiB, 'block.0.allocation': 10 * MiB, 'block.0.physical': 11 * MiB,
  'block.1.name': 'vdb', 'block.1.rd.bytes': 0, 'block.1.rd.reqs': 0, 'block.1.rd.times': 0,
  'block.1.wr.bytes': 0, 'block.1.wr.reqs': 0, 'block.1.wr.times': 0,
  'net.count': 1,
  'net.0.name': 'vnet0', 'net.0.rx.bytes': 100, 'net.0.rx.pkts': 1, 'net.0.rx.errs': 0, 'net.0.rx.drop': 0,
  'net.0.tx.bytes': 50n, 'net.0.tx.pkts': 1, 'net.0.tx.errs': 0, 'net.0.tx.drop': 0,
};

// The disks are listed in the other order: devices are matched by name, not index.
const CUR: RawStats = {
  'state.state': 1,
  'cpu.time': 1_500_000_000, 'cpu.user': 900_000_000, 'cpu.system': 300_000_000,
  'vcpu.current': 2, 'vcpu.maximum': 2, 'balloon.current': 524_288,
  'block.count': 2,
  'block.0.name': 'vdb', 'block.0.rd.bytes': 0, 'block.0.rd.reqs': 0, 'block.0.rd.times': 0,
  'block.0.wr.bytes': 0, 'block.0.wr.reqs': 0, 'block.0.wr.times': 0,
  'block.1.name': 'vda', 'block.1.rd.bytes': 9192, 'block.1.rd.reqs': 14, 'block.1.rd.times': 11_000_000,
  'block.1.wr.bytes': 2000 + 2 * MiB, 'block.1.wr.reqs': 4, 'block.1.wr.times': 8_000_000,
  'block.1.capacity': 1024 * MiB, 'block.1.allocation': 12 * MiB, 'block.1.physical': 13 * MiB,
  'net.count': 1,
  'net.0.name': 'vnet0', 'net.0.rx.bytes': 20_100, 'net.0.rx.pkts': 21, 'net.0.rx.errs': 1, 'net.0.rx.drop': 2,
  'net.0.tx.bytes': 1050n, 'net.0.tx.pkts': 11, 'net.0.tx.errs': 3, 'net.0.tx.drop': 4,
};

t.test('two samples 2 s apart: exact CPU %, counters, rates and latencies', async (t) => {
  const s = computeVmStats(sample(3000, CUR), sample(1000, PREV));
  t.equal(s.vmId, UUID_A);
  t.equal(s.vmName, 'vm-a');
  t.equal(s.sampleTime, 3000, 'sampleTime is the newest sample time');
  t.equal(s.cpuTimeNs, 1_500_000_000);
  t.equal(s.cpuPct, 25, '0.5 s of CPU in 2 s = 25 % of one host CPU');
  t.equal(s.cpuUser, 15, 'cpu.user +0.3 s in 2 s');
  t.equal(s.cpuSys, 5, 'cpu.system +0.1 s in 2 s');
  t.equal(s.vcpuCount, 2);
  t.equal(s.memoryKiB, 524_288, 'memoryKiB is balloon.current');

  t.same(s.disks?.['vda'], {
    readBytes: 9192, writeBytes: 2000 + 2 * MiB, readOps: 14, writeOps: 4,
    readRate: 4096, writeRate: MiB, readOpsRate: 2, writeOpsRate: 0,
    readLatencyMs: 1.5, writeLatencyMs: 0,
    capacity: 1024 * MiB, allocation: 12 * MiB, physical: 13 * MiB,
  }, 'vda: 8192 B and 4 reads of 1.5 ms each, 2 MiB written with no new write op -> latency 0');
  t.same(s.disks?.['vdb'], {
    readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0, readRate: 0, writeRate: 0, readOpsRate: 0,
    writeOpsRate: 0, readLatencyMs: 0, writeLatencyMs: 0, capacity: 0, allocation: 0, physical: 0,
  }, 'vdb: idle, missing sizes are 0');
  t.same(s.network?.['vnet0'], {
    rxBytes: 20_100, txBytes: 1050, rxRate: 10_000, txRate: 500,
    rxPackets: 21, txPackets: 11, rxErrors: 1, txErrors: 3, rxDrops: 2, txDrops: 4,
  });
  t.ok(Value.Check(DiskStats, s.disks?.['vda']), 'disk stats fit the DiskStats schema');
  t.ok(Value.Check(NicStats, s.network?.['vnet0']), 'NIC stats fit the NicStats schema');
});

t.test('bigint counters: deltas are exact beyond 2^53', async (t) => {
  const base = 2n ** 60n + 1n;
  const prev: RawStats = {
    'cpu.time': base, 'block.count': 1, 'block.0.name': 'vda',
    'block.0.wr.bytes': base, 'block.0.wr.reqs': 10n, 'block.0.wr.times': base,
  };
  const cur: RawStats = {
    'cpu.time': base + 250_000_000n, 'block.count': 1n, 'block.0.name': 'vda',
    'block.0.wr.bytes': base + 3n, 'block.0.wr.reqs': 13n, 'block.0.wr.times': base + 6_000_000n,
  };
  const s = computeVmStats(sample(2000, cur), sample(1000, prev));
  t.equal(s.cpuPct, 25, '0.25 s in 1 s, although both values are ~2^60');
  t.equal(s.cpuTimeNs, Number(base + 250_000_000n));
  const vda = s.disks?.['vda'];
  t.equal(vda?.writeRate, 3, '3 bytes in 1 s (Number(b) - Number(a) would give 0)');
  t.equal(vda?.writeOpsRate, 3);
  t.equal(vda?.writeLatencyMs, 2, '6 ms over 3 ops');
  t.equal(vda?.writeOps, 13);
  t.equal(typeof vda?.writeBytes, 'number', 'counters are reported as numbers');
});

t.test('a single sample: counters, but every rate and latency is 0', async (t) => {
  const s = computeVmStats(sample(1000, PREV));
  t.equal(s.cpuTimeNs, 1_000_000_000);
  t.equal(s.cpuPct, 0);
  t.equal(s.cpuUser, 0);
  t.equal(s.cpuSys, 0);
  const vda = s.disks?.['vda'];
  t.equal(vda?.writeBytes, 2000);
  t.equal(vda?.readOps, 10);
  t.same([vda?.readRate, vda?.writeRate, vda?.readOpsRate, vda?.writeOpsRate, vda?.readLatencyMs, vda?.writeLatencyMs],
    [0, 0, 0, 0, 0, 0]);
  t.equal(s.network?.['vnet0']?.rxRate, 0);
  t.equal(s.network?.['vnet0']?.txBytes, 50, 'a bigint counter is reported as a number');
});

t.test('edge cases: counter reset, new device, no elapsed time, absent groups', async (t) => {
  const reset = computeVmStats(sample(3000, { 'cpu.time': 5 }), sample(1000, { 'cpu.time': 1_000_000 }));
  t.equal(reset.cpuPct, 0, 'a counter going backwards (restart under the same uuid) counts as 0, not negative');

  const hotplug = computeVmStats(sample(3000, CUR), sample(1000, { 'cpu.time': 1_000_000_000 }));
  t.equal(hotplug.disks?.['vda']?.writeRate, 0, 'a disk missing from the previous sample has rate 0');
  t.equal(hotplug.cpuPct, 25);

  const same = computeVmStats(sample(1000, CUR), sample(1000, PREV));
  t.equal(same.cpuPct, 0, 'no elapsed time: rates are 0, not Infinity');
  t.equal(same.disks?.['vda']?.readRate, 0);

  const bare = computeVmStats(sample(1000, { 'state.state': 3 }));
  t.same(bare, { vmId: UUID_A, vmName: 'vm-a', sampleTime: 1000 }, 'groups absent from the sample are absent from the stats');
  t.notOk('cpuUser' in computeVmStats(sample(1000, { 'cpu.time': 1 })), 'no cpu.user -> no cpuUser');

  t.same([...devicePrefixes({ 'block.count': 2, 'block.0.name': 'vda', 'block.1.name': 'vda' }, 'block')],
    [['vda', 'block.0.']], 'a repeated device name keeps its first entry');
});

t.test('history: last two samples per uuid; a vanished domain is dropped; a new one starts with rate 0', async (t) => {
  const h1 = advanceHistory(new Map(), [
    { name: 'vm-a', uuid: UUID_A, stats: PREV },
    { name: 'vm-b', uuid: UUID_B, stats: { 'cpu.time': 0 } },
  ], 1000);
  t.same([...h1.keys()], [UUID_A, UUID_B]);
  t.equal(h1.get(UUID_A)?.prev, undefined, 'first sample: no prev');

  const h2 = advanceHistory(h1, [{ name: 'vm-a', uuid: UUID_A, stats: CUR }], 3000);
  t.same([...h2.keys()], [UUID_A], 'vm-b vanished from the bulk result and is dropped');
  t.equal(h2.get(UUID_A)?.prev?.time, 1000);
  t.equal(h2.get(UUID_A)?.cur.time, 3000);
  t.equal(h1.size, 2, 'the previous history is not mutated');

  const all = computeAllStats(h2);
  t.same([...all.keys()], [UUID_A]);
  t.equal(all.get(UUID_A)?.cpuPct, 25);
  t.equal(all.get(UUID_B), undefined);

  const h3 = advanceHistory(h2, [
    { name: 'vm-a', uuid: UUID_A, stats: CUR },
    { name: 'vm-b', uuid: UUID_B, stats: { 'cpu.time': 2_000_000_000 } },
  ], 5000);
  t.equal(h3.get(UUID_A)?.prev?.time, 3000, 'only the last two samples are kept');
  t.equal(computeAllStats(h3).get(UUID_B)?.cpuPct, 0, 'vm-b came back: its old samples are gone, rate 0');
  t.equal(computeAllStats(h3).get(UUID_A)?.cpuPct, 0, 'vm-a: no CPU used between 3000 and 5000');
});
