// Network errors. A bad request is InvalidParamsError (-32602) naming the field
// (canonicalize.ts); a concurrent setupNetworks is UnavailableError (40).
// The failures of a transaction carry their rollback report in `data.rollback`
// so the caller always learns both outcomes: why the change failed, and
// whether the rollback was verified.
//
// VDSM codes these as ERR_LOST_CONNECTION (10) for "no confirmation in time"
// and ERR_FAILED_IFUP (29) for a failed apply; a rollback that could not be
// verified (VDSM's RollbackIncomplete) needs a Hostvisor code. Until the API's
// ERRORS table has those names, the classes use the stand-ins below.
import { HostvisorError, type ErrorName } from '../api/errors.js';

// TODO(lead): add to ERRORS and switch these over:
//   networkLostConnection {code: 10, 'Connectivity to the engine was lost; the change was rolled back', client}
//   networkSetupFailed    {code: 29, 'Applying the network configuration failed', server}
//   networkRollbackFailed {code: 10xx, 'Network rollback could not be verified', server}
const LOST_CONNECTION: ErrorName = 'timeout';
const SETUP_FAILED: ErrorName = 'internalError';
const ROLLBACK_FAILED: ErrorName = 'internalError';
const COMMAND_FAILED: ErrorName = 'internalError';

type Opts = { cause?: unknown; data?: Record<string, unknown> };

/** An `ip` (or dhcp client) command failed or timed out. */
export class NetworkCommandError extends HostvisorError {
  override readonly name = 'NetworkCommandError';
  constructor(readonly argv: readonly string[], readonly rc: number, readonly stderr: string, opts?: { cause?: unknown; timedOut?: boolean; timeoutMs?: number }) {
    super(COMMAND_FAILED,
      opts?.timedOut
        ? `${argv.join(' ')}: timed out after ${opts.timeoutMs} ms`
        : `${argv.join(' ')}: exit ${rc}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
      { cause: opts?.cause, data: { argv: [...argv], rc, stderr: stderr.slice(-2000), timedOut: opts?.timedOut ?? false } });
  }
}

/** Apply (or the check after it) failed; `data.rollback` says what the rollback did. */
export class NetworkSetupError extends HostvisorError {
  override readonly name = 'NetworkSetupError';
  constructor(message: string, opts?: Opts) { super(SETUP_FAILED, message, opts); }
}

/** No confirmation arrived within connectivityTimeout; the change was rolled back (see `data.rollback`). */
export class NetworkLostConnectionError extends HostvisorError {
  override readonly name = 'NetworkLostConnectionError';
  constructor(message: string, opts?: Opts) { super(LOST_CONNECTION, message, opts); }
}

/** The rollback ran but the host is not back to its snapshot: `data.rollback.diff` lists what differs. */
export class NetworkRollbackError extends HostvisorError {
  override readonly name = 'NetworkRollbackError';
  constructor(message: string, opts?: Opts) { super(ROLLBACK_FAILED, message, opts); }
}

/** The applied state does not match the desired state; `mismatches` lists how. */
export class NetworkVerifyError extends HostvisorError {
  override readonly name = 'NetworkVerifyError';
  constructor(readonly mismatches: readonly string[]) {
    super(SETUP_FAILED, `network state does not match the request: ${mismatches.slice(0, 5).join('; ')}${mismatches.length > 5 ? ` (+${mismatches.length - 5} more)` : ''}`,
      { data: { mismatches: [...mismatches] } });
  }
}

/** DHCP did not produce a lease in time. */
export class DhcpError extends HostvisorError {
  override readonly name = 'DhcpError';
  constructor(message: string, opts?: Opts) { super(SETUP_FAILED, message, opts); }
}
