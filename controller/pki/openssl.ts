// The openssl CLI, run with a timeout; its stderr is kept for the error.
import { execFile } from 'node:child_process';

export const OPENSSL_TIMEOUT_MS = 30_000;

export class OpensslError extends Error {
  readonly code = 6001;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OpensslError';
  }
}

/** Runs `openssl args...`, feeding `input` on stdin; resolves with stdout. */
export function openssl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { timeout: OPENSSL_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new OpensslError(`openssl ${args[0]} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve(String(stdout));
    });
    // openssl may exit before reading stdin (most commands never do): a broken pipe is not an error.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}
