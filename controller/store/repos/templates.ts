// Templates and what depends on them (the disks of thin clones, whose backing file is a template volume).
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Template, TemplateStatus, TemplateVolume } from '../../model/templates.js';
import type { VmSpec } from '../../model/vms.js';
import { found, insertUnique, json, parseJson } from '../codec.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { Database, TemplateRow } from '../tables.js';

function toTemplate(r: Selectable<TemplateRow>): Template {
  return {
    id: r.id, name: r.name, clusterId: r.cluster_id, sourceVmId: r.source_vm_id, status: r.status as TemplateStatus,
    spec: parseJson<VmSpec>(r.spec, { memoryMiB: 0 } as VmSpec), volumes: parseJson<TemplateVolume[]>(r.volumes, []),
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

/** A thin clone's disk that needs the template, and the VM that names it (null once the VM is gone). */
export interface TemplateDependent { diskId: string; diskName: string; vmId: string | null; vmName: string | null }

export class TemplatesRepo {
  constructor(private readonly db: Kysely<Database>, private readonly now: () => number) {}

  async create(t: Pick<Template, 'name' | 'clusterId' | 'sourceVmId' | 'spec' | 'volumes'>): Promise<Template> {
    const at = this.now();
    const row: TemplateRow = {
      id: randomUUID(), name: t.name, cluster_id: t.clusterId, source_vm_id: t.sourceVmId, status: 'pending',
      spec: json(t.spec), volumes: json(t.volumes), created_at: at, updated_at: at,
    };
    await insertUnique(() => this.db.insertInto('templates').values(row).execute(),
      () => new ConflictError(`a template named ${t.name} exists`, { field: 'body.name' }));
    return toTemplate(row);
  }

  async find(id: string): Promise<Template | undefined> {
    const r = await this.db.selectFrom('templates').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toTemplate(r);
  }

  /** By id or by name. */
  async get(ref: string, field?: string): Promise<Template> {
    const r = await this.db.selectFrom('templates').selectAll().where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)])).executeTakeFirst();
    return found(r && toTemplate(r), 'template', ref, field);
  }

  async list(): Promise<Template[]> {
    return (await this.db.selectFrom('templates').selectAll().orderBy('created_at').orderBy('id').execute()).map(toTemplate);
  }

  async setStatus(id: string, status: TemplateStatus): Promise<void> {
    const r = await this.db.updateTable('templates').set({ status, updated_at: this.now() }).where('id', '=', id).executeTakeFirst();
    if (r.numUpdatedRows === 0n) throw new NotFoundError('template', id);
  }

  /** Moves the status only from `from` (false when it was not there): one deletion at a time. */
  async transition(id: string, from: TemplateStatus[], to: TemplateStatus): Promise<boolean> {
    const r = await this.db.updateTable('templates').set({ status: to, updated_at: this.now() })
      .where('id', '=', id).where('status', 'in', from).executeTakeFirst();
    return r.numUpdatedRows > 0n;
  }

  async dependents(id: string): Promise<TemplateDependent[]> {
    const rows = await this.db.selectFrom('disks')
      .leftJoin('vm_disks', 'vm_disks.disk_id', 'disks.id').leftJoin('vms', 'vms.id', 'vm_disks.vm_id')
      .select(['disks.id as diskId', 'disks.name as diskName', 'vms.id as vmId', 'vms.name as vmName'])
      .where('disks.template_id', '=', id).orderBy('disks.created_at').orderBy('disks.id').execute();
    return rows.map((r) => ({ diskId: r.diskId, diskName: r.diskName, vmId: r.vmId ?? null, vmName: r.vmName ?? null }));
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('templates').where('id', '=', id).execute();
  }
}
