// What both snapshot tests stand on: the sanlock daemon, a storage lab with one
// loop PV for a block domain, and the agent settings that put its LVs on the
// lab's loop driver. Everything is undone when the test ends.
import type { Test } from 'tap';
import { ensureSanlockDaemon } from '../storage/sanlock-daemon.js';
import { storageLab } from '../storage/storage-lab.js';
import type { Overrides } from '../harness.js';

/** Runs an undo step, reporting (never throwing) its failure: the other steps still run. */
const undo = (what: string, fn: () => Promise<unknown>) => async (): Promise<void> => {
  await fn().catch((e: unknown) => process.stderr.write(`${what}: ${String(e)}\n`));
};

export async function snapshotLab(t: Test, name: string, pvGiB: number): Promise<{ pv: string; loopDataDir: string; agentSettings: Overrides }> {
  const daemon = await ensureSanlockDaemon();
  t.teardown(undo('sanlock daemon stop', () => daemon.stop()));
  const lab = await storageLab(name);
  t.teardown(undo('lab cleanup', () => lab.cleanup()));
  const pv = await lab.makePv(pvGiB);
  lab.driver(); // so the cleanup also detaches the loop devices the agent attaches for its LVs
  const { loopDataDir, loopLinkDir } = lab.settings();
  return {
    pv, loopDataDir,
    agentSettings: {
      'storage.activation': 'loop', 'storage.loopDataDir': loopDataDir, 'storage.loopLinkDir': loopLinkDir,
      'storage.extentSizeMiB': 4, 'storage.thinInitialSizeMiB': 256, 'storage.sanlockIoTimeoutSec': 1, 'thinp.pollMs': 1000,
    },
  };
}
