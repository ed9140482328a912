// Errors raised by the libvirt facade.
import { native } from './native.js';
import { ErrorDomain, ErrorNumber } from './generated/enums.js';

export interface LibvirtErrorDetail {
  code: number;
  domain: number;
  level: number;
  str1?: string;
  str2?: string;
  str3?: string;
  int1?: number;
  int2?: number;
}

/** A libvirt error, with libvirt's own code and domain (virErrorNumber / virErrorDomain). */
export class LibvirtError extends Error {
  override readonly name = 'LibvirtError';
  readonly code: number;
  readonly domain: number;
  readonly level: number;
  readonly detail: LibvirtErrorDetail;

  constructor(message: string, detail: LibvirtErrorDetail, options?: ErrorOptions) {
    super(message, options);
    this.code = detail.code;
    this.domain = detail.domain;
    this.level = detail.level;
    this.detail = detail;
  }

  /** libvirt's symbolic names, for logs: e.g. NO_DOMAIN in domain QEMU. */
  get codeName(): string {
    return ErrorNumber[this.code] ?? String(this.code);
  }
  get domainName(): string {
    return ErrorDomain[this.domain] ?? String(this.domain);
  }
}

/** A libvirt call did not finish within its timeout. The call itself may still complete later. */
export class LibvirtTimeoutError extends Error {
  override readonly name = 'LibvirtTimeoutError';
  constructor(readonly call: string, readonly timeoutMs: number) {
    super(`libvirt call ${call} did not finish within ${timeoutMs} ms`);
  }
}

/** The connection to libvirt is down (closed, or lost and not yet re-established). */
export class LibvirtUnavailableError extends Error {
  override readonly name = 'LibvirtUnavailableError';
  constructor(message = 'libvirt connection is not available', options?: ErrorOptions) {
    super(message, options);
  }
}

// Native rejections are constructed as this class directly.
native.setErrorClass(LibvirtError);

export function isLibvirtError(e: unknown, code?: ErrorNumber): e is LibvirtError {
  return e instanceof LibvirtError && (code === undefined || e.code === code);
}
