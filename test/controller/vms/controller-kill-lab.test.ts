// Must-shows 5 and 6 on real parts: two multi-host lab hosts (each its own libvirtd with QEMU),
// agents enrolled by token, tiny guests under TCG, and the controller daemon as a real child
// process (dist/controller/main.js) whose store is a real PostgreSQL (a throwaway cluster on a
// unix socket), run with short health settings through its --settings file.
//
// 5: the controller is killed -9 during 10 concurrent starts (once while VM.create calls are in
//    flight, once as the tenth start is accepted) and started again on the same PostgreSQL. The
//    agents' before_vm_start hook sleeps 1-3.9 s (by VM id), as a real hook may: VM.create answers
//    only after it (the agent has the VM as WaitForLaunch meanwhile), so the kill finds creates
//    sent and not yet answered, the case a second create would be a second VM. Each VM ends
//    Up exactly once (its domain uuid counted in both hosts' libvirtd, `virsh list`), or its job
//    is failed with a reason; no domain on either host is one the store does not know.
// 6: one host's agent is stopped (SIGSTOP): the host is Connecting within 2 polls and
//    NonResponsive after the grace, its VMs Unknown in GET /vms and never Down (their domains
//    still run); SIGCONT: the host is Up and its VMs Up again.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { enroll } from '../../../agent/cli/enroll.js';
import { HostvisorClient } from '../../../api/client/client.js';
import type { Event } from '../../../controller/model/events.js';
import type { Host } from '../../../controller/model/hosts.js';
import { INTERRUPTED } from '../../../controller/jobs/executor.js';
import type { Job, JobStep } from '../../../controller/model/jobs.js';
import type { Vm } from '../../../controller/model/vms.js';
import { bounded, scratchDir, testConfig } from '../../agent/harness.js';
import { addHook } from '../../agent/hooks/hook-fixtures.js';
import { spawnLabAgent, type LabAgent } from '../../agent/storage/lab-agents.js';
import { GUEST_DIR, serialPathFor, waitForSerialMarker } from '../../lab/guest.js';
import { assertLabRoute, labDown, labUp, type LabHost } from '../../lab/multihost/lab.js';
import { startPostgres, type PgServer } from '../store/pg-cluster.js';
import { ControllerProcess } from './controller-process.js';

const run = promisify(execFile);
const VMS = 10;
const AGENT_PORT = 54321;
const POLL_MS = 2_000;
/** Timers run late on the loaded 2-core machine (10 TCG guests): slack on every timing bound. */
const SLACK_MS = 1_500;
const SETTINGS = {
  pollIntervalMs: POLL_MS, pollTimeoutMs: POLL_MS, nonResponsiveGraceMs: 8_000, perVmGraceMs: 500, vmListIntervalMs: 5_000,
  agentKeepaliveMs: 4_000, agentReconnectMaxMs: 1_000, agentConnectTimeoutMs: 5_000,
};
t.setTimeout(1_800_000);

const undo: Array<[string, () => Promise<unknown>, number]> = [];
t.teardown(async () => { for (const [what, fn, ms] of undo.splice(0).reverse()) await bounded(what, fn(), ms); });

// The lab comes up while PostgreSQL starts (each is seconds of mostly waiting).
undo.push(['labDown', () => labDown(), 180_000]);
const [pgServer, labs] = await Promise.all([startPostgres(), labUp(2)]);
if ('skip' in pgServer) {
  t.plan(0, pgServer.skip);
} else {
  undo.push(['PostgreSQL stop', () => pgServer.stop(), 60_000]);
  await main(pgServer, labs);
}

async function main(pgs: PgServer, labs: LabHost[]): Promise<void> {
  const db = await pgs.database('hv_realkill');
  const pgUrl = `postgresql://${db.user}@/${db.database}?host=${encodeURIComponent(String(db.host))}`;
  const sql = new pg.Client(db);
  await sql.connect();
  undo.push(['pg client end', () => sql.end(), 10_000]);

  for (const lab of labs) {
    await assertLabRoute(lab.address);
    // The lab is ours (its lock): a domain in it is what a dead run left.
    for (const uuid of await domainsOn(lab, true)) {
      t.comment(`${lab.name}: removing a domain a dead run left (${uuid})`);
      await run('virsh', ['-c', lab.libvirtUri, 'destroy', uuid], { timeout: 30_000 }).catch(() => undefined);
      await run('virsh', ['-c', lab.libvirtUri, 'undefine', uuid], { timeout: 30_000 }).catch(() => undefined);
    }
  }

  const settingsFile = join(scratchDir('hv-realkill-'), 'settings.json');
  writeFileSync(settingsFile, JSON.stringify(SETTINGS));
  const ctl = await ControllerProcess.start({ args: ['--postgres', pgUrl, '--settings', settingsFile] });
  undo.push(['controller stop', () => ctl.stop(), 30_000]);

  // Enrolled as real hosts are: a token (POST /hosts), `hostvisor enroll`, the agent on that pki.dir.
  const agents: LabAgent[] = [];
  undo.push(['agents stop', async () => { for (const a of agents) { a.child.kill('SIGCONT'); await a.stop(); } }, 60_000]);
  const hostIds: string[] = [];
  const pkiDirs: string[] = [];
  const hooks = scratchDir('hv-realkill-hooks-');
  addHook(hooks, 'before_vm_start', '50_slow', 'n=$(printf "%d" "0x$(echo "$vmId" | cut -c1-4)"); sleep "$((1 + n % 3)).$((n % 10))"; exit 0');
  // Both hosts enrolled, then both agents started at once (in host order in hostIds and agents).
  for (const lab of labs) {
    const name = `h${lab.index}`;
    const tok = await ctl.client.call<{ token: string }>('POST', '/api/v1/hosts', { name, address: lab.address, port: AGENT_PORT });
    const pkiDir = scratchDir(`hv-realkill-${name}-`);
    hostIds.push((await enroll({ controller: ctl.url, token: tok.token, pkiDir, name })).hostId);
    pkiDirs.push(pkiDir);
  }
  const started = await Promise.allSettled(labs.map(async (lab, i) => spawnLabAgent(lab, await testConfig({ 'rpc.host': '0.0.0.0', 'rpc.port': AGENT_PORT, 'pki.dir': pkiDirs[i]!, 'virt.domainType': 'qemu', 'hooks.dir': hooks }))));
  for (const r of started) if (r.status === 'fulfilled') agents.push(r.value);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  const clients = await Promise.all(labs.map((lab) => HostvisorClient.connect({ url: `wss://${lab.address}:${AGENT_PORT}/`, ...ctl.agentCredentials(), timeoutMs: 20_000 })));
  undo.push(['clients close', async () => { for (const c of clients) await c.close(); }, 20_000]);
  const nameOf = (hostId: string | null) => (hostId === null ? '-' : `h${hostIds.indexOf(hostId) + 1}`);

  await until('both lab hosts Up', 60_000, async () => {
    const hosts = await ctl.client.call<Host[]>('GET', '/api/v1/hosts');
    return hosts.length === 2 && hosts.every((h) => h.status === 'Up') ? true : undefined;
  });

  /** Every running (or, with all, defined) domain uuid on each lab host, from its libvirtd. */
  async function domainsOn(lab: LabHost, all: boolean): Promise<string[]> {
    const { stdout } = await run('virsh', ['-c', lab.libvirtUri, 'list', '--uuid', ...(all ? ['--all'] : [])], { timeout: 20_000 });
    return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }
  /** uuid -> the hosts whose libvirtd runs it. */
  async function running(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const [i, lab] of labs.entries()) for (const u of await domainsOn(lab, false)) out.set(u, [...(out.get(u) ?? []), hostIds[i]!]);
    return out;
  }
  /** What each agent says of each VM it lists. */
  async function agentStatus(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const [i, c] of clients.entries()) for (const v of (await c.call('Host.getVMList', {})).vmList) out.set(v.vmId, `${nameOf(hostIds[i]!)}:${v.status}`);
    return out;
  }
  async function vms(): Promise<Map<string, Vm>> {
    return new Map((await ctl.client.call<Vm[]>('GET', '/api/v1/vms')).map((v) => [v.id, v]));
  }
  async function define(name: string): Promise<string> {
    const spec = {
      memoryMiB: 128, vcpus: 1, domainType: 'qemu', kernel: `${GUEST_DIR}/vmlinux`, initrd: `${GUEST_DIR}/initrd.img`,
      cmdline: 'console=ttyS0 quiet panic=-1 no_timer_check lab.end=wait', serialLog: serialPathFor(name),
    };
    return (await ctl.client.call<Vm>('POST', '/api/v1/vms', { name, spec })).id;
  }
  async function jobsEnded(ids: string[], ms: number): Promise<Job[]> {
    return until('every job ended', ms, async () => {
      const all = await Promise.all(ids.map((id) => ctl.client.call<Job>('GET', `/api/v1/jobs/${id}`)));
      return all.every((j) => j.state === 'succeeded' || j.state === 'failed') ? all : undefined;
    }, 500);
  }
  /** Every event after seq `since`, paged. */
  async function eventsAfter(since: number): Promise<Event[]> {
    const out: Event[] = [];
    for (let page = 0, at = since; page < 100; page++) {
      const r = await ctl.client.call<{ events: Event[]; last: number }>('GET', `/api/v1/events?since=${at}&limit=1000`);
      out.push(...r.events);
      if (r.events.length < 1000) break;
      at = r.last;
    }
    return out;
  }
  const lastSeq = async () => (await eventsAfter(0)).at(-1)?.seq ?? 0;

  t.test('the controller daemon runs on PostgreSQL with the test\'s settings', async (t) => {
    const ready = ctl.logs.find((l) => l.includes('"msg":"controller ready"')) ?? '';
    t.match(JSON.parse(ready), { store: 'postgres', settings: SETTINGS }, 'its ready line: store postgres, the --settings overrides');
    const rows = await sql.query<{ name: string }>('SELECT name FROM hosts ORDER BY name');
    t.same(rows.rows.map((r) => r.name), ['h1', 'h2'], 'the enrolled hosts are rows in the PostgreSQL database');
  });

  const allStarted: string[] = [];

  /** The step ran at wall time `wall`: begun, not ended (a step the kill cut short is recorded as interrupted, ended when it began). */
  function ranAt(s: JobStep, wall: number): boolean {
    return s.startedAt !== null && s.startedAt <= wall && (s.endedAt === null || s.endedAt > wall || s.detail === INTERRUPTED);
  }

  /** Where each job was at wall time `wall`, from the steps it records (a killed run's steps keep their start times). */
  function phasesAt(all: Job[], wall: number): string {
    const count = new Map<string, number>();
    for (const j of all) {
      const step = j.steps.find((s) => ranAt(s, wall));
      const phase = j.endedAt !== null && j.endedAt <= wall ? 'ended' : step ? step.name : j.steps.some((s) => (s.startedAt ?? Infinity) <= wall) ? 'between steps' : 'not begun';
      count.set(phase, (count.get(phase) ?? 0) + 1);
    }
    return [...count].map(([k, n]) => `${n} ${k}`).join(', ');
  }

  /**
   * 10 concurrent starts; kill -9 once `creates` jobs show their VM.create step running (GET
   * /jobs: the step is persisted before the call), or as the tenth start is accepted; restart.
   * Each VM Up exactly once or its job failed with a reason.
   */
  async function killRound(t: Test, label: string, killWhen: { creates: number } | 'tenth accepted'): Promise<void> {
    const ids: string[] = [];
    const logFrom = agents.map((a) => a.logs.length);
    for (let i = 0; i < VMS; i++) ids.push(await define(`${label}-${i}`));
    allStarted.push(...ids);
    const t0 = performance.now();
    let accepted = 0;
    const killed: Array<Promise<{ at: number; wall: number; creating: number }>> = [];
    const jobs: Job[] = [];
    await Promise.all(ids.map(async (id, i) => {
      jobs[i] = await ctl.client.call<Job>('POST', `/api/v1/vms/${id}/start`, {});
      if (++accepted < VMS) return;
      killed.push((async () => {
        let creating = 0;
        const end = performance.now() + 90_000;
        for (let polls = 0; killWhen !== 'tenth accepted' && polls < 2_000 && performance.now() < end; polls++) {
          const now = await Promise.all(jobs.map((j) => ctl.client.call<Job>('GET', `/api/v1/jobs/${j.id}`)));
          creating = now.filter((j) => j.steps.some((s) => s.name === 'VM.create' && s.state === 'running')).length;
          if (creating >= killWhen.creates) break;
          await sleep(50);
        }
        const wall = Date.now();
        await ctl.kill9();
        return { at: performance.now() - t0, wall, creating };
      })());
    }));
    const kill = await killed[0]!;
    t.equal(jobs.length, VMS, `all ${VMS} starts accepted (202) before the kill`);
    const what = killWhen === 'tenth accepted' ? 'as the tenth start was accepted' : `once ${kill.creating} VM.create steps ran`;
    t.comment(`${label}: kill -9 ${Math.round(kill.at)} ms after the first start request, ${what}`);

    const r0 = performance.now();
    await ctl.restart();
    const readyS = (performance.now() - r0) / 1000;
    const ended = await jobsEnded(jobs.map((j) => j.id), 300_000);
    const endedS = (performance.now() - r0) / 1000;
    t.comment(`${label}: restarted on the same PostgreSQL, ready in ${readyS.toFixed(1)} s; every start job ended ${endedS.toFixed(1)} s after the restart began`);
    t.ok(ctl.logs.some((l) => l.includes('resuming a job a previous controller left unfinished')), 'the restarted controller resumed the unfinished jobs');

    t.comment(`${label}: at the kill, by the jobs' records: ${phasesAt(ended, kill.wall)}`);
    const doneBefore = ended.filter((j) => j.endedAt !== null && j.endedAt <= kill.wall).length;
    t.ok(doneBefore < VMS, `the kill came during the starts: ${doneBefore} of ${VMS} jobs had ended`);
    // A VM.create the killed controller had sent and not seen answered: the case a second create would double.
    const inFlight = ended.filter((j) => j.steps.some((s) => s.name === 'VM.create' && ranAt(s, kill.wall)));
    if (killWhen !== 'tenth accepted') t.ok(inFlight.length >= killWhen.creates, `the kill found ${inFlight.length} VM.create calls in flight`);
    const sentAgain = inFlight.filter((j) => j.steps.filter((s) => s.name === 'VM.create').length > 1).length;
    t.comment(`${label}: of those, ${inFlight.length - sentAgain} were found on their host by the resumed run and followed; ${sentAgain} were not there and were sent again`);

    // The runtime status settles from the agents' lists (each host's list every 5 s).
    const settled = await until('GET /vms agrees with the agents', 30_000, async () => {
      const [v, a] = [await vms(), await agentStatus()];
      return ids.every((id) => v.get(id)!.status === (a.get(id)?.split(':')[1] ?? 'Down')) ? v : undefined;
    }, 500);
    const dom = await running();
    let up = 0;
    for (const [i, id] of ids.entries()) {
      const job = ended[i]!;
      const on = dom.get(id) ?? [];
      const vm = settled.get(id)!;
      t.ok(on.length <= 1, `${label}-${i}: its domain runs on ${on.length} host(s) ${on.map(nameOf).join(' ')}`);
      if (job.state === 'succeeded') {
        up++;
        t.equal(on.length, 1, `${label}-${i}: job succeeded, running exactly once (${job.steps.map((s) => s.name).join(' > ')})`);
        t.match(vm, { status: 'Up', hostId: on[0] }, `${label}-${i}: GET /vms shows it Up on ${nameOf(on[0] ?? null)}`);
      } else {
        t.ok(job.error !== null && job.error.message.length > 0, `${label}-${i}: job failed with a reason: ${job.error?.code}: ${job.error?.message}`);
        t.equal(vm.status, on.length === 1 ? 'Up' : 'Down', `${label}-${i}: GET /vms shows what the hosts have (${vm.status})`);
      }
    }
    t.comment(`${label}: ${up} of ${VMS} Up, ${VMS - up} failed with a reason; ${Math.round((performance.now() - t0) / 1000)} s from the first request`);
    const perHost = hostIds.map((h) => `${nameOf(h)} ${ids.filter((id) => dom.get(id)?.[0] === h).length}`).join(', ');
    t.comment(`${label}: placed ${perHost}`);

    const upIds = ids.filter((_, i) => ended[i]!.state === 'succeeded');
    const boots = await Promise.allSettled(upIds.map((id) => waitForSerialMarker(serialPathFor(`${label}-${ids.indexOf(id)}`), 'LAB-BOOT-OK', 240_000)));
    t.equal(boots.filter((b) => b.status === 'fulfilled').length, upIds.length, `the ${upIds.length} Up guests booted (serial LAB-BOOT-OK) by ${Math.round((performance.now() - t0) / 1000)} s after the first request`);

    const known = new Set((await sql.query<{ id: string }>('SELECT id FROM vms')).rows.map((r) => r.id));
    const apiKnown = await vms();
    const stray: string[] = [];
    for (const lab of labs) for (const u of await domainsOn(lab, true)) if (!known.has(u) || !apiKnown.has(u)) stray.push(`${lab.name}:${u}`);
    t.same(stray, [], 'no domain on either host (running or defined) that the store (its PostgreSQL vms table, GET /vms) does not know');

    // Nothing done twice, as the agents saw it: each VM launched once, a second VM.create (if any) refused as "exists".
    const lines = agents.flatMap((a, i) => a.logs.slice(logFrom[i]).map(jsonLine));
    const launches = ids.map((id) => lines.filter((l) => l?.['msg'] === 'VM launched' && l['vm'] === id).length);
    const wrong = ids.map((_, i) => `${label}-${i}`).filter((_, i) => launches[i]! > 1 || (ended[i]!.state === 'succeeded' && launches[i] !== 1));
    t.same(wrong, [], `the agents launched each VM at most once, each Up one once (their 'VM launched' lines per VM: ${launches.join(' ')})`);
    const exists = lines.filter((l) => l?.['msg'] === 'call rejected' && l['method'] === 'VM.create' && l['code'] === 4).length;
    t.comment(`${label}: VM.create calls the agents refused as "exists": ${exists}`);
  }

  t.test('must-show 5: kill -9 the controller while 3 of 10 concurrent starts have VM.create in flight, restart on the same PostgreSQL', async (t) => {
    await killRound(t, 'rk-mid', { creates: 3 });
    // Stopped through the API before the next round, so 10 more TCG guests do not share 2 cores with these.
    const stops = await Promise.all(allStarted.map((id) => ctl.client.call<Job>('POST', `/api/v1/vms/${id}/stop`, {}).catch(() => null)));
    const ended = await jobsEnded(stops.filter((j): j is Job => j !== null).map((j) => j.id), 120_000);
    t.ok(ended.every((j) => j.state === 'succeeded'), `the round's VMs stopped (${ended.length} stop jobs succeeded)`);
    const left = await running();
    t.same(allStarted.filter((id) => left.has(id)), [], 'and no domain of theirs runs');
    allStarted.splice(0);
  });

  t.test('must-show 5: kill -9 the controller as the tenth start is accepted, restart on the same PostgreSQL', async (t) => {
    await killRound(t, 'rk-early', 'tenth accepted');
  });

  t.test('must-show 6: an agent stopped (SIGSTOP) turns its host Connecting within 2 polls, NonResponsive after the grace with its VMs Unknown (never Down); SIGCONT: Up, the VMs Up', async (t) => {
    const before = await vms();
    const upVms = allStarted.filter((id) => before.get(id)?.status === 'Up');
    const count = (h: string) => upVms.filter((id) => before.get(id)!.hostId === h).length;
    const hostId = count(hostIds[0]!) >= count(hostIds[1]!) ? hostIds[0]! : hostIds[1]!;
    const other = hostIds.find((h) => h !== hostId)!;
    const mine = upVms.filter((id) => before.get(id)!.hostId === hostId);
    const theirs = upVms.filter((id) => before.get(id)!.hostId === other);
    t.ok(mine.length > 0, `${nameOf(hostId)} runs ${mine.length} VMs, ${nameOf(other)} ${theirs.length}`);
    const agent = agents[hostIds.indexOf(hostId)]!;
    await until(`${nameOf(hostId)} Up with its stats`, 20_000, async () => {
      const h = await ctl.client.call<Host>('GET', `/api/v1/hosts/${hostId}`);
      return h.status === 'Up' && h.stats?.vmCount === mine.length ? true : undefined;
    });

    const seq0 = await lastSeq();
    const seen = new Map<string, Set<string>>(upVms.map((id) => [id, new Set<string>()]));
    const sample = async () => { for (const [id, v] of await vms()) seen.get(id)?.add(v.status); };
    const stoppedAt = Date.now();
    agent.child.kill('SIGSTOP');
    t.teardown(() => { agent.child.kill('SIGCONT'); });

    const statusEvent = async (to: string) => until(`${nameOf(hostId)} ${to}`, 60_000, async () => {
      await sample();
      return (await eventsAfter(seq0)).find((e) => e.kind === 'host.status' && e.subjectId === hostId && e.details['to'] === to);
    }, 200);
    const conn = await statusEvent('Connecting');
    t.ok(atOf(conn) - stoppedAt <= 2 * POLL_MS + SLACK_MS, `Connecting ${atOf(conn) - stoppedAt} ms after SIGSTOP (2 polls: ${2 * POLL_MS} ms): ${conn.message}`);
    const nr = await statusEvent('NonResponsive');
    const host = await ctl.client.call<Host>('GET', `/api/v1/hosts/${hostId}`);
    const graceMs = SETTINGS.nonResponsiveGraceMs + SETTINGS.perVmGraceMs * mine.length;
    t.equal(nr.details['graceMs'], graceMs, `the grace: ${SETTINGS.nonResponsiveGraceMs} ms + ${SETTINGS.perVmGraceMs} ms x ${mine.length} VMs`);
    const sinceContact = atOf(nr) - (host.lastContact ?? 0);
    t.ok(sinceContact > graceMs && sinceContact <= graceMs + POLL_MS + SLACK_MS,
      `NonResponsive ${sinceContact} ms after the last answer (${atOf(nr) - stoppedAt} ms after SIGSTOP): ${nr.message}`);
    t.equal(host.status, 'NonResponsive', 'GET /hosts says NonResponsive');
    const periods = Math.floor((atOf(nr) - atOf(conn)) / POLL_MS);
    const failedMeanwhile = Number(nr.details['failedPolls']) - 1;
    t.ok(failedMeanwhile >= Math.floor(0.75 * periods), `polled every period while it hung (every other period would be half): ${failedMeanwhile} more failed polls in the ${atOf(nr) - atOf(conn)} ms (${periods} periods) from Connecting to NonResponsive`);

    const unknownAt = await until('its VMs Unknown in GET /vms', 10_000, async () => {
      await sample();
      const v = await vms();
      return mine.every((id) => v.get(id)!.status === 'Unknown') ? Date.now() : undefined;
    }, 200);
    t.pass(`its ${mine.length} VMs Unknown in GET /vms ${unknownAt - atOf(nr)} ms after NonResponsive`);
    const still = await running();
    t.ok(mine.every((id) => (still.get(id) ?? []).includes(hostId)), 'while their domains still run in its libvirtd: Unknown, not Down, is the truth');
    const events = await eventsAfter(seq0);
    t.ok(events.some((e) => e.kind === 'host.vms-unknown' && e.subjectId === hostId), 'a host.vms-unknown event');
    for (let i = 0; i < 2 * POLL_MS / 200; i++) { await sample(); await sleep(200); } // held NonResponsive for two polls

    const contAt = Date.now();
    agent.child.kill('SIGCONT');
    const upEv = await statusEvent('Up');
    t.equal(upEv.details['from'], 'NonResponsive', `Up ${atOf(upEv) - contAt} ms after SIGCONT: ${upEv.message}`);
    const vmsUpAt = await until('its VMs Up again in GET /vms', 30_000, async () => {
      await sample();
      const v = await vms();
      return mine.every((id) => v.get(id)!.status === 'Up' && v.get(id)!.hostId === hostId) ? Date.now() : undefined;
    }, 200);
    t.pass(`its VMs show their real status, Up on ${nameOf(hostId)}, ${vmsUpAt - contAt} ms after SIGCONT`);

    const path = (await eventsAfter(seq0)).filter((e) => e.kind === 'host.status' && e.subjectId === hostId).map((e) => e.details['to']);
    t.same(path, ['Connecting', 'NonResponsive', 'Up'], `the host went Up > ${path.join(' > ')}: no other state on the way`);
    for (const id of mine) t.notOk(seen.get(id)!.has('Down'), `${id.slice(0, 8)} (${nameOf(hostId)}) seen ${[...seen.get(id)!].join(', ')}: never Down`);
    for (const id of theirs) t.same([...seen.get(id)!], ['Up'], `${id.slice(0, 8)} (${nameOf(other)}) Up all along`);
    t.comment(`times: SIGSTOP > Connecting ${atOf(conn) - stoppedAt} ms > NonResponsive ${atOf(nr) - stoppedAt} ms (grace ${graceMs} ms) > VMs Unknown ${unknownAt - stoppedAt} ms; SIGCONT > Up ${atOf(upEv) - contAt} ms > VMs Up ${vmsUpAt - contAt} ms`);
  });

  t.test('the VMs stop through the API and no domain is left', async (t) => {
    const stops = await Promise.all(allStarted.map((id) => ctl.client.call<Job>('POST', `/api/v1/vms/${id}/stop`, {}).catch(() => null)));
    const ended = await jobsEnded(stops.filter((j): j is Job => j !== null).map((j) => j.id), 120_000);
    t.ok(ended.every((j) => j.state === 'succeeded'), `${ended.length} stop jobs succeeded`);
    const left: string[] = [];
    for (const lab of labs) left.push(...await domainsOn(lab, true));
    t.same(left, [], 'no domain on either host');
  });
}

function jsonLine(l: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(l) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** When the controller decided it (the event's `at`), else when it was written. */
function atOf(e: Event): number {
  return typeof e.details['at'] === 'number' ? e.details['at'] : e.time;
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>, stepMs = 250): Promise<T> {
  const end = performance.now() + ms;
  for (let i = 0; i < 100_000; i++) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > end) break;
    await sleep(stepMs);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}
