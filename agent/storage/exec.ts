// Storage's runner: the agent's one runner (../process.ts) with storage's
// errors. A non-zero exit raises StorageCommandError (argv, rc, stderr); a
// timeout kills the process group and raises StorageCommandTimeoutError; an
// abort (a stopped task) raises OperationAbortedError. Storage code takes a
// Runner (the type of ../process.ts) so tests can record command lines.
import { createRunner, type Runner } from '../process.js';
import { OperationAbortedError, StorageCommandError, StorageCommandTimeoutError } from './errors.js';

export type { Runner, RunOptions, RunResult } from '../process.js';
export { resolveTool } from '../process.js';

export const run: Runner = createRunner({
  area: 'storage',
  errors: {
    failed: (argv, rc, stderr, cause) => new StorageCommandError(argv, rc, stderr, cause ? { cause } : undefined),
    timedOut: (argv, timeoutMs, stderr) => new StorageCommandTimeoutError(argv, timeoutMs, stderr),
    aborted: (argv, ms) => new OperationAbortedError(`${argv.slice(0, 2).join(' ')} was stopped after ${Math.round(ms)} ms`, { data: { argv: [...argv] } }),
  },
});
