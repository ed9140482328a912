// The storage verbs' handlers, over the pool.
import type { Handler } from '../rpc/dispatcher.js';
import type { StoragePool } from './pool.js';
import { UnavailableError } from '../api/errors.js';

type StorageMethod = 'StorageDomain.create' | 'StorageDomain.getInfo' | 'StorageDomain.getStats' | 'StorageDomain.getImages'
  | 'StorageDomain.getVolumes' | 'StoragePool.connect' | 'StoragePool.disconnect' | 'StoragePool.getInfo' | 'StoragePool.getSpmStatus'
  | 'StoragePool.spmStart' | 'StoragePool.spmStop' | 'Volume.create' | 'Volume.delete' | 'Volume.getInfo' | 'Volume.getSize'
  | 'Volume.extendSize' | 'Image.prepare' | 'Image.teardown' | 'Image.delete' | 'Host.getStorageRepoStats';

export type StorageHandlers = { [M in StorageMethod]: Handler<M> };

export function createStorageHandlers(pool: StoragePool): StorageHandlers {
  const samePool = (id: string) => {
    if (pool.connected?.spUUID !== id) throw new UnavailableError(`not connected to pool ${id}`);
  };
  return {
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
    'Volume.create': async (p) => {
      await pool.assertSpm();
      const dom = await pool.domain(p.storagedomainID);
      return dom.createVolume({
        imgUUID: p.imageID, volUUID: p.volumeID, capacity: p.size, format: p.volFormat, allocation: p.preallocate,
        ...(p.srcVolUUID ? { parentUUID: p.srcVolUUID } : {}), ...(p.description ? { description: p.description } : {}),
        ...(p.initialSize ? { initialSize: p.initialSize } : {}),
      });
    },
    'Volume.delete': async (p) => {
      await pool.assertSpm();
      await (await pool.domain(p.storagedomainID)).deleteVolume(p.imageID, p.volumeID);
      return {};
    },
    'Volume.getInfo': async (p) => (await pool.domain(p.storagedomainID)).getVolumeInfo(p.imageID, p.volumeID),
    'Volume.getSize': async (p) => (await pool.domain(p.storagedomainID)).getVolumeSize(p.imageID, p.volumeID),
    'Volume.extendSize': async (p) => {
      await pool.assertSpm();
      return (await pool.domain(p.storagedomainID)).extendVolumeSize(p.imageID, p.volumeID, p.newSize);
    },
    'Image.prepare': async (p) => {
      const r = await (await pool.domain(p.storagedomainID)).prepareImage(p.imageID, p.volumeID);
      return { path: r.path, chain: r.chain.map((v) => ({ ...v })) };
    },
    'Image.teardown': async (p) => { await (await pool.domain(p.storagedomainID)).teardownImage(p.imageID); return {}; },
    'Image.delete': async (p) => {
      await pool.assertSpm();
      await (await pool.domain(p.storagedomainID)).deleteImage(p.imageID);
      return {};
    },
  };
}
