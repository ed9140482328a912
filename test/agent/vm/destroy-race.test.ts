// VM.destroy pipelined right behind its VM.create, on one connection, with
// no wait for the create's reply (issue 14 §4): every destroy that answers
// success must leave no domain behind and no VM that reports Up afterwards.
// The old agent answered {} and then launched 9 VMs of 10 anyway (the
// destroy ran while before_vm_start was awaited, ahead of the launch).
//
// Real libvirtd, the lab's tiny TCG guest; 20 pairs per round, 20 rounds.
import t from 'tap';
import { startAgent, connectClient, StatusWatch, tinyGuest } from '../harness.js';

const PAIRS = 20;
const ROUNDS = Number(process.env.HV_DESTROY_RACE_ROUNDS ?? 20);
/** How long a round's leftovers get to show themselves (a launch the destroy did not stop starts within this). */
const SETTLE_MS = 1_500;

t.test(`${PAIRS} pipelined create+destroy pairs leave 0 domains and no VM Up after its destroy, ${ROUNDS} rounds in a row`, { timeout: ROUNDS * 60_000 + 60_000 }, async (t) => {
  const { config, stop, agent } = await startAgent();
  t.teardown(stop);
  const client = await connectClient(config, { timeoutMs: 120_000 });
  t.teardown(() => client.close());
  const watch = new StatusWatch(client);
  /** Our domains in libvirt; the agent's libvirt connection may be renewed under load, so it is read afresh and retried. */
  const domainsOf = async (ids: Set<string>): Promise<{ name: string; destroy: (f: number) => Promise<unknown> }[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await agent.client.connection.listAllDomains()).filter((d) => ids.has(d.uuid));
      } catch (e) {
        if (attempt >= 5) throw e;
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  };
  const roundMs: number[] = [];
  let failures = 0;
  interface Round { round: number; ids: Set<string>; destroyedAt: Map<string, number>; refused: string[]; allAnswered: boolean; answeredAt: number }
  /**
   * A round's verdict, taken no sooner than SETTLE_MS after its last answer. The next round's
   * calls run meanwhile instead of a bare sleep: the check looks only at this round's VM ids, and
   * later only gives a leaked launch more time to show.
   */
  const check = async (r: Round): Promise<void> => {
    const wait = r.answeredAt + SETTLE_MS - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    const left = await domainsOf(r.ids);
    const listed = (await client.call('Host.getVMList', {})).vmList.filter((v) => r.ids.has(v.vmId));
    const upAfter = watch.events.filter((e) => r.ids.has(e.vmId) && e.at > (r.destroyedAt.get(e.vmId) ?? Infinity) && e.body.status !== 'Down');
    const good = r.refused.length === 0 && r.allAnswered && left.length === 0 && listed.length === 0 && upAfter.length === 0;
    if (!good) {
      failures++;
      t.fail(`round ${r.round}`, { refused: r.refused, leftDomains: left.map((d) => d.name), listed, statusAfterDestroy: upAfter.map((e) => `${e.vmId}: ${String(e.body.status)}`) });
      for (const d of left) await d.destroy(0).catch(() => undefined); // never leave the lab running guests
    }
    t.ok(good, `round ${r.round}: ${PAIRS} creates answered WaitForLaunch and ${PAIRS} destroys {}, 0 domains left, none listed, no status but Down after a destroy answered (${roundMs[r.round]} ms to answer, checked ${Math.round(performance.now() - r.answeredAt)} ms after)`);
  };

  let previous: Round | undefined;
  for (let round = 0; round < ROUNDS && failures === 0; round++) {
    const t0 = performance.now();
    const guests = Array.from({ length: PAIRS }, (_, i) => tinyGuest(`hv-race-r${round}-${i}`));
    const ids = new Set(guests.map((g) => g.vmID));
    const destroyedAt = new Map<string, number>();
    // All 40 calls are written before any reply is read: each destroy follows its create on the wire.
    const calls = guests.map((g) => {
      const created = client.call('VM.create', { vmID: g.vmID, spec: g.spec });
      const destroyed = client.call('VM.destroy', { vmID: g.vmID }).then((r) => { destroyedAt.set(g.vmID, performance.now()); return r; });
      return Promise.all([created, destroyed]);
    });
    const answers = await Promise.allSettled(calls);
    const answeredAt = performance.now();
    const refused = answers.flatMap((a) => (a.status === 'rejected' ? [String(a.reason)] : []));
    const ok = answers.filter((a) => a.status === 'fulfilled').map((a) => (a as PromiseFulfilledResult<unknown[]>).value);
    const allAnswered = ok.every(([c, d]) => (c as { status: string }).status === 'WaitForLaunch' && JSON.stringify(d) === '{}');
    roundMs.push(Math.round(answeredAt - t0));
    if (previous) await check(previous);
    previous = { round, ids, destroyedAt, refused, allAnswered, answeredAt };
  }
  if (previous) await check(previous);
  // Both ways a destroy wins: it cancels a launch still waiting, or follows one already begun (Powering up) and destroys its domain.
  const begun = new Set(watch.events.filter((e) => e.body.status === 'Powering up').map((e) => e.vmId)).size;
  t.comment(`launches begun then destroyed: ${begun}; cancelled before they began: ${roundMs.length * PAIRS - begun}`);
  t.equal(roundMs.length, ROUNDS, `all ${ROUNDS} rounds ran`);
  t.comment(`round times (ms): ${roundMs.join(' ')}`);
});
