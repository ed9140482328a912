// Lab hosts enrolled with a test controller, each with its agent started inside the host: the
// set-up the controller's lab tests share (a host record, a token, `hostvisor enroll`, the agent).
import { enroll } from '../../../agent/cli/enroll.js';
import { scratchDir, testConfig } from '../../agent/harness.js';
import { spawnLabAgent, type LabAgent } from '../../agent/storage/lab-agents.js';
import { assertLabRoute, type LabHost } from '../../lab/multihost/lab.js';
import type { Answer, CallOptions } from '../http/harness.js';

export interface LabEnrolment {
  /** the controller's base URL and its REST call (an in-process controller or a daemon) */
  url: string;
  call(method: string, path: string, o?: CallOptions): Promise<Answer>;
  labs: readonly LabHost[];
  /** each started agent is pushed here at once, so the caller's teardown stops what did start */
  agents: LabAgent[];
  port: number;
  /** the scratch PKI directory's name prefix */
  pkiPrefix: string;
  /** made in each host before its agent starts (the guests' serial logs) */
  serialDir: string;
  /** the agent settings for lab host `i`, given its PKI directory */
  config(i: number, pkiDir: string): Parameters<typeof testConfig>[0];
  echo: boolean;
}

/** Enrols every lab host and starts its agent; the host ids, in the order of `labs`. */
export async function enrollLabAgents(o: LabEnrolment): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, h] of o.labs.entries()) {
    await assertLabRoute(h.address);
    await h.exec(['mkdir', '-p', o.serialDir]);
    const tok = await o.call('POST', '/api/v1/hosts', { body: { name: h.name, address: h.address, port: o.port } });
    const pkiDir = scratchDir(`${o.pkiPrefix}-${h.name}-`);
    ids.push((await enroll({ controller: o.url, token: tok.body.token, pkiDir, name: h.name })).hostId);
    o.agents.push(await spawnLabAgent(h, await testConfig(o.config(i, pkiDir)), { echo: o.echo }));
  }
  return ids;
}
