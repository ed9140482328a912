// The thin-provisioning extension mailbox: HSM → SPM extend requests and SPM →
// HSM replies through two areas on the master domain's shared storage. See
// README.md in this folder for the on-disk format and the protocol.
export { HsmMailbox, type ExtendReply, type ExtendRequest, type HsmMailboxOptions } from './hsm-mailbox.js';
export { SpmMailbox, type ExtendHandler, type SpmMailboxOptions, type SpmMailboxStats } from './spm-mailbox.js';
export { MailboxIoError, MailboxReasonError, MailboxTimeoutError, MailboxUnavailableError, mailboxReason } from './errors.js';
export { ensureAreaFile, type DirectIoMode } from './block-file.js';
export { BLOCK_SIZE, SLOTS_PER_HOST, ReasonCode, areaBytes, type ReasonName } from './format.js';
