// Row shapes of the controller's store, as both engines hold them. Times are epoch milliseconds
// (bigint columns, read back as numbers); structured values are JSON text; flags are 0/1 integers,
// so the same rows read the same on SQLite and PostgreSQL.
import type { Generated } from 'kysely';

export interface ClusterRow {
  id: string;
  name: string;
  policy: string;
  thresholds: string;
  pool_id: string | null;
  spm_host_id: string | null;
  spm_lver: number | null;
  created_at: number;
  updated_at: number;
}

export interface HostRow {
  id: string;
  name: string;
  address: string;
  port: number;
  cluster_id: string;
  status: string;
  spm_priority: number;
  pool_host_id: number | null;
  cert_fingerprint: string | null;
  last_contact: number | null;
  reasons: string;
  stats: string | null;
  created_at: number;
  updated_at: number;
}

export interface EnrollmentTokenRow {
  id: string;
  secret_hash: string;
  host_name: string;
  address: string;
  port: number;
  cluster_id: string;
  expires_at: number;
  used_at: number | null;
  host_id: string | null;
  created_at: number;
}

export interface StorageDomainRow {
  id: string;
  cluster_id: string;
  name: string;
  kind: string;
  spec: string;
  master: number;
  status: string;
  size_bytes: number | null;
  free_bytes: number | null;
  host_status: string;
  created_at: number;
  updated_at: number;
}

export interface NetworkRow {
  id: string;
  cluster_id: string;
  name: string;
  vlan: number | null;
  mtu: number;
  bridged: number;
  required: number;
  host_nics: string;
  host_status: string;
  created_at: number;
  updated_at: number;
}

export interface DiskRow {
  id: string;
  name: string;
  storage_domain_id: string;
  size_bytes: number;
  provisioning: string;
  status: string;
  image_id: string;
  volume_id: string;
  /** a thin clone's disk: the template whose SHARED volume is its backing file */
  template_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface VmRow {
  id: string;
  name: string;
  cluster_id: string;
  spec: string;
  desired_state: string;
  status: string;
  host_id: string | null;
  memory_reservation_mib: number;
  cpu_reservation: number;
  pinned_host_id: string | null;
  priority: number;
  created_at: number;
  updated_at: number;
}

export interface VmDiskRow {
  vm_id: string;
  disk_id: string;
}

/** A VM being suspended ('saving') or suspended: its state volume (controller/vm-images). */
export interface VmHibernationRow {
  vm_id: string;
  state: string;
  domain_id: string;
  image_id: string;
  volume_id: string;
  size_bytes: number;
  host_id: string | null;
  job_id: string;
  created_at: number;
  updated_at: number;
  /** the snapshot whose RAM state the next start restores (its volume stays the snapshot's) */
  snapshot_id?: string | null;
}

export interface VmSnapshotRow {
  id: string;
  vm_id: string;
  description: string;
  status: string;
  memory: number;
  memory_volume: string | null;
  vm_running: number | null;
  frozen: number | null;
  warnings: string;
  job_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface VmSnapshotVolumeRow {
  snapshot_id: string;
  disk_id: string;
  domain_id: string;
  image_id: string;
  volume_id: string;
  child_id: string;
}

export interface JobRow {
  id: string;
  kind: string;
  target_kind: string;
  target_id: string;
  state: string;
  params: string;
  steps: string;
  progress: number;
  error: string | null;
  correlation_id: string;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  updated_at: number;
}

export interface EventRow {
  seq: Generated<number>;
  time: number;
  kind: string;
  severity: string;
  subject_kind: string;
  subject_id: string;
  message: string;
  details: string;
  correlation_id: string | null;
}

export interface TemplateRow {
  id: string;
  name: string;
  cluster_id: string;
  source_vm_id: string;
  status: string;
  spec: string;
  volumes: string;
  created_at: number;
  updated_at: number;
}

export interface Database {
  clusters: ClusterRow;
  hosts: HostRow;
  enrollment_tokens: EnrollmentTokenRow;
  storage_domains: StorageDomainRow;
  networks: NetworkRow;
  disks: DiskRow;
  vms: VmRow;
  vm_disks: VmDiskRow;
  vm_hibernations: VmHibernationRow;
  vm_snapshots: VmSnapshotRow;
  vm_snapshot_volumes: VmSnapshotVolumeRow;
  jobs: JobRow;
  events: EventRow;
  templates: TemplateRow;
}
