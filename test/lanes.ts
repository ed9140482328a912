/**
 * The lanes of `npm test` (scripts/run-tests.sh): the main lane, the light lane (test/light-lane.txt)
 * and the lab lane (test/lab-lane.txt), each a tap process of its own, run at the same time. The
 * lab lane runs beside the main lane because its tests use only the multi-host lab's daemons; the
 * test helpers that reach the main host's daemons call refuseInLabLane() so that a lab-lane test
 * that would share a daemon with the main lane fails at once instead of racing it.
 * test/lanes.test.ts checks the lane lists.
 */

/** The environment variable run-tests.sh sets for the lab lane's tap process. */
export const LANE_ENV = 'HV_TEST_LANE';

export class MainHostInLabLaneError extends Error {
  constructor(what: string) {
    super(`${what} uses the main host's daemons, which the main lane uses at the same time: ` +
      `a test that needs them belongs in the main lane, not in test/lab-lane.txt`);
    this.name = 'MainHostInLabLaneError';
  }
}

/** Throws when this process runs in the lab lane: `what` reaches the main host's daemons. */
export function refuseInLabLane(what: string): void {
  if (process.env[LANE_ENV] === 'lab') throw new MainHostInLabLaneError(what);
}
