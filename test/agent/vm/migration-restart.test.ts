// Agent restarts in the middle of a live migration (issue 12, must-show 6),
// on two lab hosts with real libvirtd and QEMU. The guest keeps 8 MiB of its
// memory dirty and the migration runs at 1 MiB/s, so libvirt is still copying
// when the test kills an agent with SIGKILL. libvirt keeps the job; the
// restarted agent finds it, reports it (Migration Source with
// VM.getMigrationStatus in progress, or Migration Destination), and follows
// it: raised bandwidth lets it converge and the VM ends Up on exactly one
// host; a cancel ends it with the VM Up on A and nothing left on B. A
// restarted source that followed the job to B runs after_vm_migrate_source.
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labDown, labUp, SHARED_DIR, type LabHost } from '../../lab/multihost/lab.js';
import { waitForSerialMarker } from '../../lab/guest.js';
import { bounded } from '../harness.js';
import type { LabAgent } from '../storage/lab-agents.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import type { Config } from '../../../agent/config/settings.js';
import { agentStatus, countingGuest, domStateOn, LAB_LIBVIRT_PKI, labAgentWithClient, migrationAgentConfig, serialLogOn, tickCounts, until } from './migration-lab.js';

const echo = !!process.env['HV_TEST_LOG'];
const secs = (ms: number): string => (ms / 1000).toFixed(1);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Side { host: LabHost; config: Config; agent: LabAgent; client: HostvisorClient }

t.test('agent restarts during a live migration', async (t) => {
  const sides: Side[] = [];
  const vms: string[] = [];
  const work = join(SHARED_DIR, `migration-restart-${process.pid}`);
  const hookLog = join(work, 'after_vm_migrate_source.log');
  t.teardown(async () => {
    rmSync(work, { recursive: true, force: true });
    for (const s of sides) for (const id of vms) await bounded('VM.destroy', s.client.call('VM.destroy', { vmID: id }).catch(() => {}), 30_000);
    for (const s of sides) await bounded('client close', s.client.close(), 10_000);
    for (const s of sides) await bounded('agent stop', s.agent.stop(), 30_000);
    await bounded('labDown', labDown(), 120_000);
  });
  const [hA, hB] = (await labUp(2)) as [LabHost, LabHost];
  mkdirSync(work, { recursive: true });
  const up = async (host: LabHost): Promise<Side> => {
    const config = await migrationAgentConfig({ 'migration.libvirtTransport': 'tls', 'migration.libvirtPkiPath': LAB_LIBVIRT_PKI });
    // Records which VM each after_vm_migrate_source ran for, and whether it was given the domain XML.
    const dir = join(config['hooks.dir'], 'after_vm_migrate_source');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '50_record'), `#!/bin/sh\ngrep -q '<domain' "$_hook_domxml" && echo "$(hostname) domxml" >> ${hookLog}\n`, { mode: 0o755 });
    return { host, config, ...(await labAgentWithClient(host, config, echo)) };
  };
  const [A, B] = await Promise.all([up(hA), up(hB)]);
  sides.push(A, B);
  const dst = `${hB.address}:54321`;

  /** SIGKILL to the side's agent, then the same agent (config, PKI) started again; returns the timings. */
  const killAndRestart = async (s: Side): Promise<{ downMs: number }> => {
    const t0 = performance.now();
    await s.agent.kill();
    await s.client.close().catch(() => {});
    const again = await labAgentWithClient(s.host, s.config, echo);
    s.agent = again.agent;
    s.client = again.client;
    return { downMs: performance.now() - t0 };
  };

  /** A dirtying guest Up on A, migrating to B at 1 MiB/s with libvirt's copy under way. */
  const slowMigration = async (t: Test, name: string): Promise<ReturnType<typeof countingGuest>> => {
    const g = countingGuest(name, { dirtyMiB: 8 });
    vms.push(g.vmID);
    await A.client.call('VM.create', { vmID: g.vmID, spec: g.spec });
    t.ok(await until(async () => (await agentStatus(A.client, g.vmID)) === 'Up', 60_000), `${name} Up on A`);
    await waitForSerialMarker(serialLogOn(hA, name), 'LAB-TICK 10', 120_000);
    await A.client.call('VM.migrate', { vmID: g.vmID, params: { dst, maxBandwidth: 1 } });
    const copying = await until(async () => {
      const st = await A.client.call('VM.getMigrationStatus', { vmID: g.vmID });
      return st.status === 'in_progress' && (st.dataRemaining ?? 0) > 0 && (await agentStatus(B.client, g.vmID)) === 'Migration Destination';
    }, 60_000);
    t.ok(copying, 'libvirt copies memory (data remaining > 0) and B shows Migration Destination');
    return g;
  };

  /** Where libvirt runs the domain: [state on A, state on B]. */
  const placement = async (name: string): Promise<[string | undefined, string | undefined]> => [await domStateOn(hA, name), await domStateOn(hB, name)];

  const keepsCounting = async (t: Test, h: LabHost, name: string): Promise<void> => {
    const before = Math.max(-1, ...tickCounts(serialLogOn(h, name)));
    await sleep(1_500);
    const after = Math.max(-1, ...tickCounts(serialLogOn(h, name)));
    t.ok(after > before, `the guest counts on ${h.name} (${before} -> ${after})`);
  };

  /** Raises the bandwidth through A's agent and waits for the outcome on both agents. */
  const converge = async (t: Test, g: ReturnType<typeof countingGuest>): Promise<void> => {
    const t0 = performance.now();
    await A.client.call('VM.migrateChangeParams', { vmID: g.vmID, params: { maxBandwidth: 1000 } });
    const doneA = await until(async () => (await agentStatus(A.client, g.vmID)) === 'Down', 120_000);
    const stats = (await A.client.call('VM.getStats', { vmID: g.vmID })).statsList[0] as Record<string, unknown> | undefined;
    t.ok(doneA, `A: Down ${secs(performance.now() - t0)} s after the bandwidth was raised`);
    t.equal(stats?.['exitMessage'], 'migration succeeded', 'with "migration succeeded"');
    t.ok(await until(async () => (await agentStatus(B.client, g.vmID)) === 'Up', 60_000), `B: Up (${secs(performance.now() - t0)} s)`);
    t.ok(await until(async () => (await A.client.call('VM.getMigrationStatus', { vmID: g.vmID })).status !== 'in_progress', 15_000), 'the migration ended');
    const st = await A.client.call('VM.getMigrationStatus', { vmID: g.vmID });
    t.equal(st.status, 'done', 'getMigrationStatus on A: done');
    t.equal(st.progress, 100, 'progress 100');
    t.same(await placement(g.spec.name), [undefined, 'running'], 'libvirt: no domain on A, running on B: the VM runs on exactly one host');
    await keepsCounting(t, hB, g.spec.name);
  };

  /** A slow migration, then `side`'s agent killed mid-copy and restarted: it must report `expect` while libvirt keeps the job. */
  const restartMidCopy = async (t: Test, name: string, side: Side, expect: string): Promise<ReturnType<typeof countingGuest>> => {
    const g = await slowMigration(t, name);
    const { downMs } = await killAndRestart(side);
    t.comment(`${side === A ? 'source' : 'destination'} agent killed and ready again in ${secs(downMs)} s`);
    const t1 = performance.now();
    t.ok(await until(async () => (await agentStatus(side.client, g.vmID)) === expect, 30_000), `the restarted agent reports ${expect} (${secs(performance.now() - t1)} s after ready)`);
    t.same(await placement(g.spec.name), ['running', 'paused'], 'libvirt kept the job: running on A, paused (incoming) on B');
    return g;
  };

  await t.test('kill -9 of the source agent mid-copy: the restarted agent finds the outgoing job, reports it and follows it to B', async (t) => {
    const g = await restartMidCopy(t, 'hv-it-rst-src', A, 'Migration Source');
    const st = await A.client.call('VM.getMigrationStatus', { vmID: g.vmID });
    t.equal(st.status, 'in_progress', `VM.getMigrationStatus: in_progress, progress ${st.progress}, ${st.dataRemaining} bytes remaining`);
    t.ok((st.dataRemaining ?? 0) > 0, 'with data remaining (from the job libvirt kept)');
    t.equal(await agentStatus(B.client, g.vmID), 'Migration Destination', 'B still shows Migration Destination');
    await converge(t, g);
    t.ok(await until(async () => existsSync(hookLog), 15_000), 'the restarted source ran after_vm_migrate_source once the VM had left');
    t.same(existsSync(hookLog) ? readFileSync(hookLog, 'utf8').trim().split('\n') : [], [`${hA.name} domxml`], 'once, on A, given the domain XML');
    await B.client.call('VM.destroy', { vmID: g.vmID });
    await A.client.call('VM.destroy', { vmID: g.vmID }).catch(() => {});
  });

  await t.test('kill -9 of the destination agent mid-copy: the restarted agent finds the incoming domain, reports it and sees it arrive', async (t) => {
    const g = await restartMidCopy(t, 'hv-it-rst-dst', B, 'Migration Destination');
    t.equal((await A.client.call('VM.getMigrationStatus', { vmID: g.vmID })).status, 'in_progress', 'A: still in progress');
    await converge(t, g);
    await B.client.call('VM.destroy', { vmID: g.vmID });
    await A.client.call('VM.destroy', { vmID: g.vmID }).catch(() => {});
  });

  await t.test('a restarted destination agent never resumes the incoming domain: a cancel on A leaves the VM Up on A, and B cleans up', async (t) => {
    const g = await restartMidCopy(t, 'hv-it-rst-cancel', B, 'Migration Destination');
    const tc = performance.now();
    await A.client.call('VM.migrateCancel', { vmID: g.vmID });
    t.ok(await until(async () => (await agentStatus(A.client, g.vmID)) === 'Up', 60_000), `A: Up again (${secs(performance.now() - tc)} s after the cancel)`);
    t.ok(await until(async () => (await agentStatus(B.client, g.vmID)) === undefined && (await domStateOn(hB, g.spec.name)) === undefined, 30_000),
      `B: the agent dropped the VM and libvirt holds no domain (${secs(performance.now() - tc)} s)`);
    t.same(await placement(g.spec.name), ['running', undefined], 'the VM runs on A only');
    await keepsCounting(t, hA, g.spec.name);
    await A.client.call('VM.destroy', { vmID: g.vmID });
  });

  await t.test('a restarted source agent cancels the job it found: the VM stays Up on A, B cleans up', async (t) => {
    const g = await restartMidCopy(t, 'hv-it-rst-src-cancel', A, 'Migration Source');
    const tc = performance.now();
    await A.client.call('VM.migrateCancel', { vmID: g.vmID });
    t.ok(await until(async () => (await agentStatus(A.client, g.vmID)) === 'Up', 60_000), `A: Up again (${secs(performance.now() - tc)} s after the cancel)`);
    const st = await A.client.call('VM.getMigrationStatus', { vmID: g.vmID });
    t.equal(st.status, 'failed', `getMigrationStatus: failed (${st.error?.message})`);
    t.equal(st.error?.code, 47, 'code 47: cancelled');
    t.ok(await until(async () => (await agentStatus(B.client, g.vmID)) === undefined && (await domStateOn(hB, g.spec.name)) === undefined, 30_000),
      'B: the agent dropped the VM and libvirt holds no domain');
    t.same(await placement(g.spec.name), ['running', undefined], 'the VM runs on A only');
    await keepsCounting(t, hA, g.spec.name);
    await A.client.call('VM.destroy', { vmID: g.vmID });
  });
});
