// Network errors. A bad request is InvalidParamsError (-32602) naming the field
// (canonicalize.ts); a concurrent setupNetworks is UnavailableError (40).
// The failures of a transaction carry their rollback report in `data.rollback`
// so the caller always learns both outcomes: why the change failed, and
// whether the rollback was verified.
//
// VDSM's codes where VDSM has them: ERR_LOST_CONNECTION (10) for "no
// confirmation in time", ERR_FAILED_IFUP (29) for a failed apply; a rollback
// that could not be verified (VDSM's RollbackIncomplete) is our 1009.
import { HostvisorError, type ErrorName } from '../../api/errors.js';

const LOST_CONNECTION: ErrorName = 'networkLostConnection';
const SETUP_FAILED: ErrorName = 'networkSetupFailed';
const ROLLBACK_FAILED: ErrorName = 'networkRollbackFailed';
const COMMAND_FAILED: ErrorName = 'networkCommandFailed';

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

/**
 * A VM NIC names a network that does not exist, has no bridge (bridged: false),
 * or whose bridge is missing on the host (VDSM's ERR_BAD_BRIDGE, 27).
 * `data.field` names the NIC's `network` field.
 */
export class NetworkBadBridgeError extends HostvisorError {
  override readonly name = 'NetworkBadBridgeError';
  constructor(message: string, opts: { cause?: unknown; data: { field: string; network: string; reason: 'noNetwork' | 'bridgeless' | 'bridgeMissing' } }) {
    super('networkBadBridge', message, opts);
  }
}
