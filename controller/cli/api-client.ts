// A small HTTPS JSON client for the controller API, presenting a client certificate.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';

export const DEFAULT_URL = 'https://localhost:8443';
/** Where `npm start` and the controller put the admin's credentials. */
export const DEFAULT_CREDS_DIR = '/etc/pki/hostvisor/admin';
const TIMEOUT_MS = 30_000;

export class ApiCallError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiCallError';
  }
}

export interface Credentials { cert: Buffer; key: Buffer; ca: Buffer }

/** cert.pem, key.pem and ca.pem from a credentials directory. */
export function loadCredentials(dir: string): Credentials {
  try {
    return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')), ca: readFileSync(join(dir, 'ca.pem')) };
  } catch (e) {
    throw new ApiCallError(0, 'NoCredentials', `cannot read the client credentials in ${dir} (cert.pem, key.pem, ca.pem): ${(e as Error).message}`, {}, { cause: e });
  }
}

export class ApiClient {
  constructor(private readonly base: URL, private readonly creds: Credentials) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, this.base);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, {
        method, cert: this.creds.cert, key: this.creds.key, ca: this.creds.ca, timeout: TIMEOUT_MS,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(new ApiCallError(0, 'Unreachable', `${method} ${url}: ${e.message}`, {}, { cause: e })));
      req.end(payload);
    });
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch (e) {
      throw new ApiCallError(status, 'BadAnswer', `${method} ${path}: the answer is not JSON (HTTP ${status})`, {}, { cause: e });
    }
    if (status >= 400) {
      const err = parsed as { code?: string; message?: string; details?: Record<string, unknown> } | undefined;
      throw new ApiCallError(status, err?.code ?? 'Error', err?.message ?? `HTTP ${status}`, err?.details ?? {});
    }
    return parsed as T;
  }
}
