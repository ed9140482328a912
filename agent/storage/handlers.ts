// The storage verbs' handlers, over the pool.
import type { Handler } from '../rpc/dispatcher.js';
import type { StoragePool } from './pool.js';
import { PoolNotConnectedError } from './errors.js';
import { createTaskHandlers, type TaskHandlers } from './tasks/handlers.js';
import { createSaveImageHandlers } from './save-image.js';

type StorageMethod = 'StorageDomain.create' | 'StorageDomain.getInfo' | 'StorageDomain.getStats' | 'StorageDomain.getImages'
  | 'StorageDomain.getVolumes' | 'StoragePool.connect' | 'StoragePool.disconnect' | 'StoragePool.getInfo' | 'StoragePool.getSpmStatus'
  | 'StoragePool.spmStart' | 'StoragePool.spmStop' | 'Volume.getInfo' | 'Volume.getSize'
  | 'Image.prepare' | 'Image.teardown' | 'Host.getStorageRepoStats';

// The SPM verbs (Volume.create/delete/extendSize, Image.delete) run as tasks: tasks/handlers.ts.
export type StorageHandlers = { [M in StorageMethod]: Handler<M> } & TaskHandlers & ReturnType<typeof createSaveImageHandlers>;

export function createStorageHandlers(pool: StoragePool): StorageHandlers {
  // VDSM's StoragePoolUnknown (309), as StoragePool.getInfo answers.
  const samePool = (id: string) => {
    if (pool.connected?.spUUID !== id) throw new PoolNotConnectedError(id, pool.connected?.spUUID);
  };
  return {
    ...createTaskHandlers(pool),
    ...createSaveImageHandlers(pool),
    'StorageDomain.create': async (p) => {
      await pool.createDomain(p.storagedomainID, p.spec, p.description);
      return { storagedomainID: p.storagedomainID };
    },
    'StorageDomain.getInfo': async (p) => ({ ...(await (await pool.domain(p.storagedomainID)).getInfo()) }),
    'StorageDomain.getStats': async (p) => (await pool.domain(p.storagedomainID)).getStats(),
    'StorageDomain.getImages': async (p) => ({ images: await (await pool.domain(p.storagedomainID)).getImages() }),
    'StorageDomain.getVolumes': async (p) => ({ volumes: await (await pool.domain(p.storagedomainID)).getVolumes(p.imageID) }),
    'StoragePool.connect': async (p) => {
      await pool.connect({
        spUUID: p.storagepoolID, hostID: p.hostID, masterSdUUID: p.masterSdUUID, domains: p.domains,
        ...(p.masterVersion !== undefined ? { masterVersion: p.masterVersion } : {}),
      });
      return {};
    },
    'StoragePool.disconnect': async (p) => { samePool(p.storagepoolID); await pool.disconnect(); return {}; },
    'StoragePool.getInfo': (p) => pool.info(p.storagepoolID),
    'Host.getStorageRepoStats': async (p) => pool.repoStats(p.domains),
    'StoragePool.getSpmStatus': async (p) => { samePool(p.storagepoolID); return pool.spmStatus(); },
    'StoragePool.spmStart': async (p) => { samePool(p.storagepoolID); return { spmLver: await pool.spmStart() }; },
    'StoragePool.spmStop': async (p) => { samePool(p.storagepoolID); await pool.spmStop(); return {}; },
    'Volume.getInfo': async (p) => (await pool.domain(p.storagedomainID)).getVolumeInfo(p.imageID, p.volumeID),
    'Volume.getSize': async (p) => (await pool.domain(p.storagedomainID)).getVolumeSize(p.imageID, p.volumeID),
    'Image.prepare': async (p) => {
      const r = await (await pool.domain(p.storagedomainID)).prepareImage(p.imageID, p.volumeID);
      return { path: r.path, chain: r.chain.map((v) => ({ ...v })) };
    },
    'Image.teardown': async (p) => { await (await pool.domain(p.storagedomainID)).teardownImage(p.imageID); return {}; },
  };
}
