// qemu-img as a child process: create (optionally over a backing file), info
// (with the backing chain), resize, measure and check.
import type { Logger } from '../log.js';
import type { CacheMode, CopyCache } from './copy-cache.js';
import { StorageCommandError } from './errors.js';
import { run as defaultRunner, type Runner } from './exec.js';

export type ImageFormat = 'qcow2' | 'raw';
export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';

export interface QemuImgOptions {
  timeoutMs: number;
  runner?: Runner;
  log?: Logger;
}

export interface ImageInfo {
  filename: string;
  format: string;
  virtualSize: number;
  actualSize: number;
  backingFilename?: string;
  fullBackingFilename?: string;
  backingFormat?: string;
}

interface RawInfo {
  'filename': string;
  'format': string;
  'virtual-size': number;
  'actual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
}

export class QemuImg {
  private readonly runner: Runner;
  constructor(private readonly o: QemuImgOptions) {
    this.runner = o.runner ?? defaultRunner;
  }

  /** `qemu-img <args>`. */
  private qemuImg(args: string[], signal?: AbortSignal) {
    return this.runner(['qemu-img', ...args], { timeoutMs: this.o.timeoutMs, ...(this.o.log ? { log: this.o.log } : {}), ...(signal ? { signal } : {}) });
  }

  /**
   * Creates an image. `backing.name` is written into the qcow2 as is (a name
   * relative to the new image's folder); the backing file is not opened (-u),
   * so it need not be active. Aborting `signal` kills qemu-img (OperationAbortedError).
   */
  async create(path: string, o: { format: ImageFormat; size: number; backing?: { name: string; format: ImageFormat }; preallocation?: Preallocation; signal?: AbortSignal }): Promise<void> {
    const opts: string[] = [];
    if (o.format === 'qcow2') opts.push('compat=1.1');
    if (o.preallocation && o.preallocation !== 'off') {
      opts.push(`preallocation=${o.preallocation}`);
      // qemu allows a backing file with preallocation only with subclusters.
      if (o.backing && o.format === 'qcow2') opts.push('extended_l2=on');
    }
    const args = ['create', '-q', '-f', o.format];
    if (opts.length) args.push('-o', opts.join(','));
    if (o.backing) args.push('-u', '-b', o.backing.name, '-F', o.backing.format);
    args.push(path, String(o.size));
    await this.qemuImg(args, o.signal);
  }

  async info(path: string, o: { format?: ImageFormat } = {}): Promise<ImageInfo> {
    const r = await this.qemuImg(['info', '-U', '--output', 'json', ...(o.format ? ['-f', o.format] : []), path]);
    return toInfo(parse<RawInfo>(r.stdout, path));
  }

  /** The whole chain, the image first and its base last. */
  async chain(path: string, o: { format?: ImageFormat } = {}): Promise<ImageInfo[]> {
    const r = await this.qemuImg(['info', '-U', '--backing-chain', '--output', 'json', ...(o.format ? ['-f', o.format] : []), path]);
    return parse<RawInfo[]>(r.stdout, path).map(toInfo);
  }

  async resize(path: string, format: ImageFormat, size: number, preallocation?: Preallocation): Promise<void> {
    await this.qemuImg(['resize', '-q', '-f', format, ...(preallocation && preallocation !== 'off' ? [`--preallocation=${preallocation}`] : []), path, String(size)]);
  }

  /**
   * `qemu-img convert -p -n`: copies (and collapses) the chain ending at src
   * into dst, which already exists with the right size. `targetIsZero`: dst
   * reads as zeros (a fresh qcow2 or sparse file), so zeros are not written.
   * onProgress gets 0..100 as qemu-img prints it. Aborting kills qemu-img.
   * rateLimitMiBs bounds its I/O (-r). `cache`: -T for the source chain, -t
   * for the target (copy-cache.ts; `none` makes the progress follow the writes).
   */
  async convert(src: { path: string; format: ImageFormat }, dst: { path: string; format: ImageFormat },
    o: { timeoutMs: number; targetIsZero: boolean; cache: CopyCache; rateLimitMiBs?: number; onProgress?: (pct: number) => void; signal?: AbortSignal }): Promise<{ ms: number }> {
    const args = ['convert', '-p', '-n', '-T', o.cache.source, '-t', o.cache.target, ...(o.targetIsZero ? ['--target-is-zero'] : []),
      ...(o.rateLimitMiBs ? ['-r', `${o.rateLimitMiBs}M`] : []), '-f', src.format, '-O', dst.format, src.path, dst.path];
    return this.withProgress(args, o);
  }

  /**
   * `qemu-img commit -p -d`: writes the top's data into its backing file
   * (the base) and leaves the top as it was (-d), so a chain read through
   * the top reads the same data at every moment of the commit. onProgress
   * gets 0..100; aborting kills qemu-img. `cache` (-t) is the chain's: `none`
   * unless an image of it refuses O_DIRECT (copy-cache.ts).
   */
  async commit(top: { path: string; format: ImageFormat }, o: { timeoutMs: number; cache?: CacheMode; onProgress?: (pct: number) => void; signal?: AbortSignal }): Promise<{ ms: number }> {
    return this.withProgress(['commit', '-p', '-d', '-t', o.cache ?? 'none', '-f', top.format, top.path], o);
  }

  /** `qemu-img rebase -u`: names another backing file in the image's header, data untouched (after a commit made them read alike). */
  async rebaseUnsafe(path: string, backing: { name: string; format: ImageFormat }): Promise<void> {
    await this.qemuImg(['rebase', '-u', '-f', 'qcow2', '-b', backing.name, '-F', backing.format, path]);
  }

  /** Runs a qemu-img command that prints "(12.34/100%)" steps with -p. */
  private async withProgress(args: string[], o: { timeoutMs: number; onProgress?: (pct: number) => void; signal?: AbortSignal }): Promise<{ ms: number }> {
    let tail = '';
    const onStdout = (d: Buffer) => {
      // "    (12.34/100%)\r" per step; a step may be split across chunks.
      const text = tail + d.toString('latin1');
      const all = [...text.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)];
      tail = text.slice(-32);
      const last = all.at(-1);
      if (last) o.onProgress?.(Number(last[1]));
    };
    const r = await this.runner(['qemu-img', ...args], {
      timeoutMs: o.timeoutMs, onStdout, ...(this.o.log ? { log: this.o.log } : {}), ...(o.signal ? { signal: o.signal } : {}),
    });
    return { ms: r.ms };
  }

  /** Bytes a copy of this image (its whole chain) in `format` needs: qemu-img measure's "required". */
  async measureImage(path: string, srcFormat: ImageFormat, format: ImageFormat): Promise<number> {
    const r = await this.qemuImg(['measure', '-U', '-f', srcFormat, '-O', format, '--output', 'json', path]);
    return parse<{ required: number }>(r.stdout, path).required;
  }

  /** Bytes a fully allocated image of this format and virtual size needs. */
  async measure(format: ImageFormat, size: number): Promise<number> {
    const r = await this.qemuImg(['measure', '-O', format, '--size', String(size), '--output', 'json']);
    return parse<{ 'fully-allocated': number }>(r.stdout, 'measure')['fully-allocated'];
  }

  /**
   * Bytes a qcow2 needs to hold TOP over BASE (the sub-chain cut below BASE):
   * what a commit of TOP into BASE needs BASE to hold (VDSM's measure with
   * baseID). Read with force-share: the images are in use by a running VM.
   */
  async measureCommit(top: { path: string; block: boolean }, base: { path: string; block: boolean; format: ImageFormat }): Promise<number> {
    const file = (v: { path: string; block: boolean }) => ({ driver: v.block ? 'host_device' : 'file', filename: v.path });
    const spec = {
      driver: 'qcow2', 'read-only': true, 'force-share': true, file: file(top),
      backing: { driver: base.format, 'read-only': true, 'force-share': true, file: file(base), ...(base.format === 'qcow2' ? { backing: null } : {}) },
    };
    const r = await this.qemuImg(['measure', '--output', 'json', '-O', 'qcow2', `json:${JSON.stringify(spec)}`]);
    return parse<{ required: number }>(r.stdout, 'measure').required;
  }

  /** `qemu-img check -r leaks`: frees clusters a killed writer allocated but never referenced (harmless, but check reports them). */
  async repairLeaks(path: string): Promise<void> {
    await this.runner(['qemu-img', 'check', '-q', '-r', 'leaks', '-f', 'qcow2', path], { timeoutMs: this.o.timeoutMs, ...(this.o.log ? { log: this.o.log } : {}) });
  }

  /** `qemu-img check`; returns the parsed report (rc 0 clean, 2 corruptions, 3 leaks). */
  async check(path: string, format: ImageFormat = 'qcow2'): Promise<{ rc: number; report: Record<string, unknown> }> {
    const r = await this.runner(['qemu-img', 'check', '-U', '--output', 'json', '-f', format, path],
      { timeoutMs: this.o.timeoutMs, okCodes: [0, 2, 3], ...(this.o.log ? { log: this.o.log } : {}) });
    return { rc: r.rc, report: parse<Record<string, unknown>>(r.stdout, path) };
  }
}

function parse<T>(stdout: string, what: string): T {
  try {
    return JSON.parse(stdout) as T;
  } catch (e) {
    throw new StorageCommandError(['qemu-img', what], 0, `unparsable JSON: ${stdout.slice(0, 200)}`, { cause: e });
  }
}

function toInfo(r: RawInfo): ImageInfo {
  const out: ImageInfo = { filename: r.filename, format: r.format, virtualSize: r['virtual-size'], actualSize: r['actual-size'] ?? 0 };
  if (r['backing-filename'] !== undefined) out.backingFilename = r['backing-filename'];
  if (r['full-backing-filename'] !== undefined) out.fullBackingFilename = r['full-backing-filename'];
  if (r['backing-filename-format'] !== undefined) out.backingFormat = r['backing-filename-format'];
  return out;
}
