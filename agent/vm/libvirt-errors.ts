// Maps libvirt facade errors to API errors with stable codes.
import { LibvirtError, LibvirtTimeoutError, LibvirtUnavailableError, enums } from '../libvirt/index.js';
import { HostvisorError, LibvirtCallError, LibvirtUnavailableApiError, NoVmError, OperationTimeoutError } from '../../api/errors.js';

export function toApiError(e: unknown, vmId?: string): unknown {
  if (e instanceof HostvisorError) return e;
  if (e instanceof LibvirtUnavailableError) return new LibvirtUnavailableApiError({ cause: e });
  if (e instanceof LibvirtTimeoutError) return new OperationTimeoutError(e.message, { cause: e });
  if (e instanceof LibvirtError) {
    if (e.code === enums.ErrorNumber.ERR_NO_DOMAIN && vmId) return new NoVmError(vmId, { cause: e });
    return new LibvirtCallError(e.message, { cause: e, data: { libvirtCode: e.code, libvirtDomain: e.domain } });
  }
  return e;
}

/** Runs fn and rethrows its failure as an API error. */
export async function api<T>(fn: () => Promise<T>, vmId?: string): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toApiError(e, vmId);
  }
}
