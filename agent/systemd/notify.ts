// sd_notify for a Type=notify unit, through systemd's own `systemd-notify`
// tool (Node has no AF_UNIX datagram sockets). Without $NOTIFY_SOCKET (not
// started by systemd) every call is a no-op.
import { run } from '../process.js';

export const NOTIFY_TIMEOUT_MS = 5_000;

export interface Notifier {
  ready(status: string): Promise<void>;
  status(status: string): Promise<void>;
  stopping(status: string): Promise<void>;
  watchdog(): Promise<void>;
  /** WATCHDOG=1 period in ms when systemd asked for a watchdog (WATCHDOG_USEC), else undefined. */
  watchdogIntervalMs(fraction: number): number | undefined;
}

export function createNotifier(env: NodeJS.ProcessEnv = process.env, binary = 'systemd-notify'): Notifier {
  const socket = env.NOTIFY_SOCKET;
  /** Rejects with CommandError or CommandTimeoutError. */
  const send = async (args: string[]): Promise<void> => {
    if (!socket) return;
    // --pid: the message is about this daemon, not the short-lived helper
    // (the unit sets NotifyAccess=all so systemd accepts it from the helper).
    await run([binary, `--pid=${process.pid}`, ...args], { timeoutMs: NOTIFY_TIMEOUT_MS, env });
  };
  return {
    ready: (status) => send(['--ready', `--status=${status}`]),
    status: (status) => send([`--status=${status}`]),
    stopping: (status) => send(['STOPPING=1', `--status=${status}`]),
    watchdog: () => send(['WATCHDOG=1']),
    watchdogIntervalMs: (fraction) => {
      const usec = Number(env.WATCHDOG_USEC);
      // WATCHDOG_PID, when set, must name us (sd_watchdog_enabled semantics).
      if (!socket || !(usec > 0) || (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid)) return undefined;
      return Math.max(1, Math.floor((usec / 1000) * fraction));
    },
  };
}
