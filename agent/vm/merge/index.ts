// Live merge (issue 13, agent part): the service and the settings it takes.
import type { Config } from '../../config/settings.js';
import type { Logger } from '../../log.js';
import { QemuImg } from '../../storage/qemu-img.js';
import type { VmManager } from '../manager.js';
import { LiveMerges } from './service.js';
import type { MergeStepDeps, MergeStorage } from './steps.js';

export { LiveMerges } from './service.js';
export type MergeHandlers = ReturnType<LiveMerges['handlers']>;

export function createLiveMerges(c: Config, deps: { manager: VmManager; storage: MergeStorage; monitor: MergeStepDeps['monitor']; log: Logger }): LiveMerges {
  return new LiveMerges({
    ...deps,
    qemuImg: new QemuImg({ timeoutMs: c['storage.qemuImgTimeoutMs'], log: deps.log }),
    policy: { chunkMiB: c['thinp.chunkMiB'], percent: c['thinp.percent'], maxFactor: c['storage.maxSizeFactor'] },
    pollMs: c['merge.pollMs'], pivotTimeoutMs: c['merge.pivotTimeoutMs'], timeoutSec: c['merge.timeoutSec'], keepEndedSec: c['merge.keepEndedSec'],
  });
}
