// A running VM's guest agent report as the controller shows it (GET /vms/{id}): the agent's
// VM.getStats guest fields, VDSM's names.
import { Type, type Static } from '@sinclair/typebox';
import { GuestInfoFields } from '../../api/guest-info.js';

export const VmGuestInfo = Type.Object(GuestInfoFields, { description: "the guest agent's last report, from the VM's host (absent when the VM does not run or its host did not answer in time)" });
export type VmGuestInfo = Static<typeof VmGuestInfo>;
