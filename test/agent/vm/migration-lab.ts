// Test helpers for migrations on the multi-host lab: a guest that counts on
// its serial console while it keeps memory dirty, agents started (and
// restarted) inside lab hosts, and what each host's libvirt holds.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { LabHost } from '../../lab/multihost/lab.js';
import { GUEST_DIR } from '../../lab/guest.js';
import type { Config } from '../../../agent/config/settings.js';
import type { HostvisorClient } from '../../../api/client/client.js';
import { testConfig, type VmSpecParam } from '../harness.js';
import { connectLabClient, spawnLabAgent, type LabAgent } from '../storage/lab-agents.js';

export const SERIAL_DIR = '/var/log/libvirt/qemu';
/** Where lab.sh puts each host's libvirt certificates (lab CA), as seen inside the host: the qemu+tls pkipath. */
export const LAB_LIBVIRT_PKI = '/etc/libvirt/pki';
const pauseMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The guest's serial log as host `h` keeps it (its private /var/log/libvirt), read from the main namespace. */
export const serialLogOn = (h: LabHost, name: string): string => join(h.dir, 'log', 'libvirt', 'qemu', `${name}.serial`);

/** The LAB-TICK counters in a serial log, in order. */
export function tickCounts(file: string): number[] {
  if (!existsSync(file)) return [];
  return [...readFileSync(file, 'latin1').matchAll(/LAB-TICK (\d+)/g)].map((m) => Number(m[1]));
}

/**
 * A guest that prints LAB-TICK n every 100 ms and, with dirtyMiB, rewrites
 * that many MiB of its tmpfs with random bytes in a loop: memory that stays
 * dirty, so a slow migration keeps copying.
 */
export function countingGuest(name: string, o: { dirtyMiB?: number; writeMiB?: number; extraCmdline?: string[]; disks?: VmSpecParam['disks'] } = {}): { vmID: string; spec: VmSpecParam } {
  const dirty = o.dirtyMiB ? `(while :; do dd if=/dev/urandom of=/tmp/dirty bs=1M count=${o.dirtyMiB} conv=notrunc 2>/dev/null; done) &\n` : '';
  // writeMiB: into /dev/vda in 64 MiB steps a second apart (a steady writer, so the disk keeps growing), then LAB-WRITE-DONE.
  const steps = Math.ceil((o.writeMiB ?? 0) / 64);
  const write = steps ? `(rc=0; s=0; while [ $s -lt ${steps} ]; do dd if=/dev/zero of=/dev/vda bs=1M count=64 seek=$((s*64)) oflag=direct 2>/dev/null || rc=$?; echo "LAB-WRITE-STEP $s"; s=$((s+1)); sleep 1; done; echo "LAB-WRITE-DONE rc=$rc") &\n` : '';
  const script = `${dirty}${write}i=0; while :; do echo "LAB-TICK $i"; i=$((i+1)); sleep 0.1; done\n`;
  const spec = {
    name, memoryMiB: 128, vcpus: 1, domainType: 'qemu',
    kernel: join(GUEST_DIR, 'vmlinux'), initrd: join(GUEST_DIR, 'initrd.img'),
    cmdline: ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', ...(o.extraCmdline ?? []), `lab.sh=${Buffer.from(script).toString('base64')}`].join(' '),
    serialLog: join(SERIAL_DIR, `${name}.serial`),
  } as VmSpecParam;
  if (o.disks) spec.disks = o.disks;
  return { vmID: randomUUID(), spec };
}

/** The settings every migration lab agent shares, plus `extra`. */
export function migrationAgentConfig(extra: Partial<Config> = {}): Promise<Config> {
  return testConfig({
    'rpc.host': '0.0.0.0', 'rpc.port': 54321, 'virt.domainType': 'qemu',
    'migration.peerTlsServername': 'localhost',
    'migration.monitorIntervalMs': 250, 'migration.incomingStartTimeoutMs': 10_000, 'migration.retryIntervalMs': 1_000,
    ...extra,
  });
}

/** An agent in `h` with `config` (the same config again after a kill: the same PKI, the same settings) and a client to it. */
export async function labAgentWithClient(h: LabHost, config: Config, echo = false): Promise<{ agent: LabAgent; client: HostvisorClient }> {
  await h.exec(['mkdir', '-p', SERIAL_DIR]);
  const agent = await spawnLabAgent(h, config, { echo });
  try {
    return { agent, client: await connectLabClient(agent) };
  } catch (e) {
    await agent.kill();
    throw e;
  }
}

/** libvirt's view on host h: the state of domain `name` (running, paused, shut off), or undefined when it has none. */
export async function domStateOn(h: LabHost, name: string): Promise<string | undefined> {
  const r = await h.exec(['virsh', '-c', 'qemu:///system', 'domstate', name]).catch(() => undefined);
  const s = r?.code === 0 ? r.stdout.trim() : '';
  return s ? s : undefined;
}

/** The agent's status of a VM (Host.getVMList), undefined when it does not list it. */
export async function agentStatus(c: HostvisorClient, vmID: string): Promise<string | undefined> {
  return (await c.call('Host.getVMList', {})).vmList.find((v) => v.vmId === vmID)?.status;
}

/** Polls `probe` every 100 ms until it returns true; false after timeoutMs. */
export async function until(probe: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() >= end) return false;
    await pauseMs(100);
  }
}
