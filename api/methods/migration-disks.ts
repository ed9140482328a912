// Thin disks during a live migration: the source, after its SPM extended a
// volume, has the destination refresh it (VDSM's VM.refresh_disk), so the
// guest never resumes there on a smaller view of its disk.
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Uuid, withVmId } from '../types.js';

export const MIGRATION_DISK_METHODS = {
  'VM.refresh_disk': method({
    summary: "Called by a migration's source on the destination after it extended a thin block volume of the VM: this host refreshes the volume (its LV mapping) and answers the size it now sees, which the source checks before the extension counts as done.",
    params: withVmId({
      drive: Type.Object({ domainID: Uuid, imageID: Uuid, volumeID: Uuid }, { description: 'the volume, one of the VM\'s disks' }),
    }),
    result: Type.Object({ apparentsize: Type.Number({ description: 'bytes this host sees after the refresh' }) }),
    errors: ['noVM', 'invalidParams', 'storageDomainDoesNotExist', 'volumeDoesNotExist'], since: '0.6', mutating: true,
  }),
} as const satisfies Record<string, MethodDef>;
