/**
 * Hostvisor test lab: helpers for tests that boot the tiny test guest built by test/lab/setup.sh.
 *
 * The guest is a Debian kernel (uncompressed vmlinux, PVH boot) plus a busybox initramfs whose
 * /init (test/lab/guest/init) runs the workload named by `lab.*` kernel command line words and
 * prints markers (LAB-BOOT-OK, LAB-DD-DONE rc=N, ...) on its serial console, which libvirt writes
 * to a file. The domain XML is TCG-friendly: the lab's /dev/kvm does not run stock kernels well.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { refuseInLabLane } from '../lanes.js';

/** Lab working directory: $HOSTVISOR_LAB, default /var/tmp/hostvisor-lab. */
export const LAB_DIR: string = process.env['HOSTVISOR_LAB'] || '/var/tmp/hostvisor-lab';
/** Where setup.sh puts vmlinux, vmlinuz and initrd.img. */
export const GUEST_DIR: string = join(LAB_DIR, 'guest');

export interface GuestDisk {
  /** Image file, or block device (e.g. a loop device standing in for an LV). */
  path: string;
  type: 'file' | 'block';
  format: 'qcow2' | 'raw';
  /** error_policy of the disk driver; default 'stop'. */
  errorPolicy?: 'stop' | 'report' | 'enospace';
}

export interface GuestOptions {
  /** Domain name. */
  name: string;
  /** Domain type; default $HOSTVISOR_VIRT_TYPE or 'qemu' (TCG). */
  virtType?: 'qemu' | 'kvm';
  /** Memory in MiB; default 128 (64 is too small for the kernel + initramfs). */
  memoryMiB?: number;
  /** Default 1. */
  vcpus?: number;
  /** Extra kernel command line words, normally `lab.*=...` (see test/lab/guest/init). */
  cmdline?: string[];
  /** Optional disk, attached as virtio vda. */
  disk?: GuestDisk;
  /** Optional virtio NIC on this existing Linux bridge. */
  bridge?: string;
  /** Serial console log; default LAB_DIR/run/<name>.serial (truncated at each start). */
  serialPath?: string;
  /** Inserted verbatim inside <metadata>. */
  metadataXml?: string;
  /** Default (and only) 'destroy'. */
  onPoweroff?: 'destroy';
}

/** Escape a value for use in XML text or in a quoted attribute. */
function xmlEscape(value: string | number): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function defaultVirtType(): 'qemu' | 'kvm' {
  const env = process.env['HOSTVISOR_VIRT_TYPE'];
  if (env === undefined || env === '') return 'qemu';
  if (env === 'qemu' || env === 'kvm') return env;
  throw new Error(`HOSTVISOR_VIRT_TYPE must be 'qemu' or 'kvm', not '${env}'`);
}

function positiveInt(what: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`${what} must be a positive integer, not ${value}`);
  }
  return value;
}

/** Default serial log path of a guest. */
export function serialPathFor(name: string): string {
  return join(LAB_DIR, 'run', `${name}.serial`);
}

/**
 * Libvirt domain XML for the test guest (modelled on the lab recipe mkdom.sh): TCG by default,
 * the default CPU model (host-passthrough/host-model abort QEMU here), direct kernel boot of the
 * uncompressed vmlinux, `console=ttyS0 quiet panic=-1 no_timer_check`, serial output to a file, no USB, video
 * or balloon, ACPI (for the power button), and every reboot/crash ends in destroy.
 */
export function guestDomainXml(o: GuestOptions): string {
  if (!o.name || o.name.includes('/')) {
    throw new Error(`invalid guest name '${o.name}'`);
  }
  const virtType = o.virtType ?? defaultVirtType();
  const memoryMiB = positiveInt('memoryMiB', o.memoryMiB ?? 128);
  const vcpus = positiveInt('vcpus', o.vcpus ?? 1);
  const serialPath = o.serialPath ?? serialPathFor(o.name);
  const onPoweroff = o.onPoweroff ?? 'destroy';
  for (const word of o.cmdline ?? []) {
    if (word === '' || /\s/.test(word)) {
      throw new Error(`kernel command line word must be non-empty without spaces: '${word}'`);
    }
  }
  const cmdline = ['console=ttyS0', 'quiet', 'panic=-1', 'no_timer_check', ...(o.cmdline ?? [])].join(' ');

  const lines: string[] = [];
  lines.push(`<domain type='${xmlEscape(virtType)}'>`);
  lines.push(`  <name>${xmlEscape(o.name)}</name>`);
  if (o.metadataXml !== undefined) {
    lines.push(`  <metadata>${o.metadataXml}</metadata>`);
  }
  lines.push(`  <memory unit='MiB'>${memoryMiB}</memory>`);
  lines.push(`  <vcpu>${vcpus}</vcpu>`);
  lines.push('  <os>');
  lines.push(`    <type arch='x86_64' machine='pc'>hvm</type>`);
  lines.push(`    <kernel>${xmlEscape(join(GUEST_DIR, 'vmlinux'))}</kernel>`);
  lines.push(`    <initrd>${xmlEscape(join(GUEST_DIR, 'initrd.img'))}</initrd>`);
  lines.push(`    <cmdline>${xmlEscape(cmdline)}</cmdline>`);
  lines.push('  </os>');
  lines.push('  <features><acpi/></features>');
  lines.push(`  <clock offset='utc'/>`);
  lines.push(`  <on_poweroff>${xmlEscape(onPoweroff)}</on_poweroff>`);
  lines.push('  <on_reboot>destroy</on_reboot>');
  lines.push('  <on_crash>destroy</on_crash>');
  lines.push('  <devices>');
  lines.push('    <emulator>/usr/bin/qemu-system-x86_64</emulator>');
  if (o.disk) {
    const d = o.disk;
    const policy = d.errorPolicy ?? 'stop';
    const source = d.type === 'block'
      ? `<source dev='${xmlEscape(d.path)}'/>`
      : `<source file='${xmlEscape(d.path)}'/>`;
    lines.push(`    <disk type='${xmlEscape(d.type)}' device='disk'>`);
    lines.push(
      `      <driver name='qemu' type='${xmlEscape(d.format)}' cache='none' io='native'` +
        ` error_policy='${xmlEscape(policy)}'/>`,
    );
    lines.push(`      ${source}`);
    lines.push(`      <target dev='vda' bus='virtio'/>`);
    lines.push('    </disk>');
  }
  if (o.bridge !== undefined) {
    // driver qemu: no vhost (vhost_net is not available in the lab kernel).
    lines.push(`    <interface type='bridge'>`);
    lines.push(`      <source bridge='${xmlEscape(o.bridge)}'/>`);
    lines.push(`      <model type='virtio'/>`);
    lines.push(`      <driver name='qemu'/>`);
    lines.push('    </interface>');
  }
  lines.push(`    <controller type='usb' model='none'/>`);
  lines.push(`    <serial type='file'>`);
  lines.push(`      <source path='${xmlEscape(serialPath)}' append='off'/>`);
  lines.push(`      <target port='0'/>`);
  lines.push('    </serial>');
  lines.push(`    <video><model type='none'/></video>`);
  lines.push(`    <memballoon model='none'/>`);
  lines.push('  </devices>');
  lines.push('</domain>');
  return lines.join('\n') + '\n';
}

/** Create LAB_DIR/run (where serial logs go) and return its path. */
export function ensureRunDir(): string {
  const dir = join(LAB_DIR, 'run');
  mkdirSync(dir, { recursive: true });
  return dir;
}

function matcher(pattern: string | RegExp): (line: string) => boolean {
  if (typeof pattern === 'string') return (line) => line.includes(pattern);
  // Drop g/y so that test() carries no lastIndex state between lines.
  const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  return (line) => re.test(line);
}

/**
 * Poll a serial log file (every ~10 ms; it need not exist yet) until a complete line matches
 * `pattern` (a substring, or a RegExp). Resolves with the line (without CR/LF) and the time waited;
 * rejects on timeout with an Error quoting the last lines of the file. If the file shrinks or is
 * replaced (a restarted guest truncates it), reading starts again from its beginning.
 */
export async function waitForSerialMarker(
  serialPath: string,
  pattern: string | RegExp,
  timeoutMs: number,
): Promise<{ line: string; elapsedMs: number }> {
  const matches = matcher(pattern);
  const start = performance.now();
  let offset = 0;
  let inode = -1;
  let partial = '';
  let seen: string[] = [];
  let exists = false;
  const buf = Buffer.alloc(64 * 1024);

  for (;;) {
    let st: Stats | undefined;
    try {
      st = await stat(serialPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      st = undefined;
    }
    if (st) {
      exists = true;
      if (st.ino !== inode || st.size < offset) {
        inode = st.ino;
        offset = 0;
        partial = '';
        seen = [];
      }
      if (st.size > offset) {
        const fh = await open(serialPath, 'r');
        try {
          for (;;) {
            const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
            if (bytesRead === 0) break;
            offset += bytesRead;
            partial += buf.toString('latin1', 0, bytesRead);
          }
        } finally {
          await fh.close();
        }
        const parts = partial.split('\n');
        partial = parts.pop() ?? '';
        for (const raw of parts) {
          const line = raw.replace(/\r+$/, '');
          seen.push(line);
          if (seen.length > 200) seen.splice(0, seen.length - 50);
          if (matches(line)) {
            return { line, elapsedMs: Math.round(performance.now() - start) };
          }
        }
      }
    }
    const elapsed = performance.now() - start;
    if (elapsed >= timeoutMs) {
      const tail = [...seen, ...(partial ? [partial.replace(/\r+$/, '')] : [])].slice(-20);
      const what = typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern);
      const detail = !exists
        ? `${serialPath} does not exist`
        : tail.length === 0
          ? `${serialPath} is empty`
          : `last lines of ${serialPath}:\n  ${tail.join('\n  ')}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${detail}`);
    }
    await sleep(Math.min(10, Math.max(1, timeoutMs - elapsed)));
  }
}

let repoRootCache: string | undefined;

/** The repository root: the nearest directory above this file that holds package.json. */
export function repoRoot(): string {
  if (repoRootCache !== undefined) return repoRootCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      repoRootCache = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`no package.json above ${dirname(fileURLToPath(import.meta.url))}`);
    }
    dir = parent;
  }
}

/**
 * Control the lab's libvirtd through test/lab/libvirtd.sh: 'stop' is SIGTERM, 'kill' is SIGKILL
 * (both wait until the process is gone), 'start' waits until libvirtd answers, 'restart' = stop +
 * start. Rejects if the script fails or takes longer than `timeoutMs`.
 */
export function libvirtdCtl(
  action: 'start' | 'stop' | 'kill' | 'restart',
  timeoutMs = 90_000,
): Promise<void> {
  try { refuseInLabLane('the main libvirtd (libvirtdCtl)'); } catch (e) { return Promise.reject(e); }
  const script = join(repoRoot(), 'test', 'lab', 'libvirtd.sh');
  const args = action === 'kill' ? [script, 'stop', '--kill'] : [script, action];
  return new Promise((resolve, reject) => {
    execFile(
      '/bin/bash',
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', env: { ...process.env, HOSTVISOR_LAB: LAB_DIR } },
      (err, stdout, stderr) => {
        if (err) {
          const how = err.killed ? `timed out after ${timeoutMs} ms` : `failed (${err.code ?? err.signal})`;
          reject(new Error(`libvirtd.sh ${args.slice(1).join(' ')} ${how}\n${stdout}${stderr}`.trimEnd()));
        } else {
          resolve();
        }
      },
    );
  });
}
