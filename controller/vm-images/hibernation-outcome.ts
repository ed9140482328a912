// What to do with a hibernation record left `saving` once no vm.suspend job follows it any more
// (the job failed with an unknown outcome: a timeout, a host that stopped answering, a kill). A
// pure function of what the hosts and the state volume say now, so the reconcile loop re-reads
// the world on every pass and acts only on facts:
// - the VM runs on a host: the save did not complete, the volume was never a resume point: drop;
// - every host answered, none runs it, and the state volume holds a complete libvirt save image:
//   the save finished, so the record becomes `suspended` and the next start resumes it;
// - anything else is unknown and stays `saving`, with the reason, for an admin to decide
//   (DELETE /vms/{id}/hibernation): a guess here either loses a VM's RAM or runs it twice.

/** The state volume's header as an agent read it (Volume.getSaveImageState), or why it was not read. */
export type SaveImageReading =
  | { read: true; state: 'complete' | 'partial' | 'empty' | 'unrecognized'; magic: string; hostId: string }
  | { read: false; why: string };

export interface SavingObservation {
  /** hosts that did not answer Host.getVMList, or answered with an incomplete list (still recovering), with why */
  unanswered: Record<string, string>;
  /** the hosts whose fresh list shows the VM, with its status there */
  sightings: Array<{ hostId: string; status: string }>;
  /** only asked for when the lists alone do not decide */
  image?: SaveImageReading;
}

export type SavingDecision =
  | { action: 'drop'; reason: string; runningOn: string }
  | { action: 'saved'; reason: string }
  | { action: 'keep'; reason: string; needsImage?: true };

/** Statuses in which the guest is not running and has nothing more to write. */
const STOPPED = new Set(['Down']);
/** The save itself is still going on there. */
const SAVING = 'Saving State';

export function decideSaving(o: SavingObservation): SavingDecision {
  const saving = o.sightings.find((s) => s.status === SAVING);
  if (saving) return { action: 'keep', reason: `the VM's state is being saved on host ${saving.hostId} now` };
  const unknown = o.sightings.find((s) => s.status === 'Unknown');
  if (unknown) return { action: 'keep', reason: `host ${unknown.hostId} lists the VM with status Unknown: whether it runs there is not known` };
  const running = o.sightings.filter((s) => !STOPPED.has(s.status));
  if (running.length > 0) {
    const where = running.map((s) => `${s.hostId} (${s.status})`).join(', ');
    return { action: 'drop', runningOn: running[0]!.hostId, reason: `the VM runs on ${where}: its save did not complete, and the state volume is no resume point` };
  }
  const silent = Object.entries(o.unanswered);
  if (silent.length > 0) {
    return { action: 'keep', reason: `whether the VM's state was saved is unknown: ${silent.map(([h, why]) => `host ${h} did not answer (${why})`).join('; ')}; it may still run or be saved there` };
  }
  if (o.image === undefined) return { action: 'keep', needsImage: true, reason: 'the VM runs on no host; its state volume is not read yet' };
  if (!o.image.read) return { action: 'keep', reason: `the VM runs on no host, and its state volume could not be read (${o.image.why}): whether the save completed is unknown` };
  switch (o.image.state) {
    case 'complete':
      return { action: 'saved', reason: `the VM runs on no host and its state volume holds a complete save image (read on host ${o.image.hostId}): the save finished` };
    case 'partial':
      return { action: 'keep', reason: `the VM runs on no host and its state volume holds an incomplete save (${o.image.magic}): it cannot be resumed; discard it (DELETE /vms/{id}/hibernation) to start the VM afresh` };
    case 'empty':
      return { action: 'keep', reason: 'the VM runs on no host and nothing was written to its state volume: it cannot be resumed; discard it (DELETE /vms/{id}/hibernation) to start the VM afresh' };
    default:
      return { action: 'keep', reason: `the VM runs on no host and its state volume holds no libvirt save image (it starts with "${o.image.magic}"): an admin decides (DELETE /vms/{id}/hibernation)` };
  }
}
