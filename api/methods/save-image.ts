// Reading a hibernation's state volume back: whether libvirt finished writing the save image in
// it. libvirt (qemu_saveimage.c) writes its header with the magic "LibvirtQemudPart" first and
// turns it into "LibvirtQemudSave" only once QEMU's whole state is written, so the magic alone
// tells a complete save from one cut short (a killed agent or libvirtd, a full volume, a crash).
import { Type } from '@sinclair/typebox';
import { method, type MethodDef } from '../method.js';
import { Uuid } from '../types.js';

export const SaveImageStateT = Type.Union([Type.Literal('complete'), Type.Literal('partial'), Type.Literal('empty'), Type.Literal('unrecognized')], {
  description: 'complete: libvirt finished the save (magic LibvirtQemudSave), a VM.create restoreState can resume it; '
    + 'partial: a save that did not finish (LibvirtQemudPart), never resumable; empty: zeros, nothing was written; unrecognized: anything else',
});

export const SAVE_IMAGE_METHODS = {
  'Volume.getSaveImageState': method({
    summary: "Whether a hibernation state volume (VM.hibernate's stateVolume) holds a complete libvirt save image: its header's magic, read on this host "
      + '(the volume is activated for the read and deactivated after it when it was not active before). Read only; any host connected to the pool answers.',
    params: Type.Object({ storagepoolID: Type.Optional(Uuid), storagedomainID: Uuid, imageID: Uuid, volumeID: Uuid }),
    result: Type.Object({
      state: SaveImageStateT,
      magic: Type.String({ description: "the header's first 16 bytes, as printable ASCII ('.' for any other byte)" }),
    }),
    errors: ['volumeDoesNotExist', 'imageDoesNotExist', 'storageDomainDoesNotExist', 'prepareIllegalVolume', 'unavailable'], since: '0.8', mutating: false,
  }),
} as const satisfies Record<string, MethodDef>;
