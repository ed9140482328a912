// Host networking's runner (ip, the DHCP client): the agent's one runner
// (../process.ts) raising NetworkCommandError, with argv, rc and stderr, for a
// non-zero exit, a timeout (the process group is killed) or an abort.
// Network code takes a Runner (the type of ../process.ts), so unit tests can
// record command lines instead of running them (the VLAN and bond commands
// cannot run on this kernel).
import { createRunner, type Runner } from '../process.js';
import { NetworkCommandError } from './errors.js';

export type { Runner, RunOptions, RunResult } from '../process.js';
export { resolveTool } from '../process.js';

export const runCommand: Runner = createRunner({
  area: 'network',
  errors: {
    failed: (argv, rc, stderr, cause) => new NetworkCommandError(argv, rc, stderr, cause ? { cause } : undefined),
    timedOut: (argv, timeoutMs, stderr) => new NetworkCommandError(argv, -1, stderr, { timedOut: true, timeoutMs }),
    aborted: (argv, ms) => new NetworkCommandError(argv, -1, `stopped after ${Math.round(ms)} ms`),
  },
});
