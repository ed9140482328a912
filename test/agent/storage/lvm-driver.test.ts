// Unit: the command lines of the `lvm` activation driver (real hosts, device-mapper),
// recorded through the Runner seam instead of run, and the --config every LVM command gets.
import t from 'tap';
import { LvmActivationDriver } from '../../../agent/storage/activation.js';
import { StorageCommandError } from '../../../agent/storage/errors.js';
import type { RunOptions, RunResult, Runner } from '../../../agent/storage/exec.js';
import { createActivationDriver, STORAGE_DEFAULTS } from '../../../agent/storage/index.js';
import { LoopActivationDriver } from '../../../agent/storage/loop-activation.js';
import { Lvm, lvmConfig } from '../../../agent/storage/lvm.js';

const VG = '5f0b1c7e-3a6d-4c61-9a51-2a0d9a5c0b11';

function recorder(answer: (argv: readonly string[]) => Partial<RunResult> | Error = () => ({})) {
  const calls: Array<{ argv: readonly string[]; opts: RunOptions }> = [];
  const runner: Runner = async (argv, opts) => {
    calls.push({ argv, opts });
    const a = answer(argv);
    if (a instanceof Error) throw a;
    return { rc: 0, stdout: '', stdoutBuf: Buffer.alloc(0), stderr: '', ms: 1, ...a };
  };
  return { calls, runner };
}

t.test('lvm config: devices filter limited to the domain PVs; activation=0 only without device-mapper', async (t) => {
  const real = lvmConfig(['/dev/mapper/360014051', '/dev/sdb'], true);
  t.match(real, 'filter=["a|^/dev/mapper/360014051$|","a|^/dev/sdb$|","r|.*|"]');
  t.match(real, 'use_devicesfile=0');
  t.notMatch(real, 'activation=0');
  t.match(real, 'backup{backup=0 archive=0}');
  t.equal((real.match(/global\{/g) ?? []).length, 1, 'one global section (a second one would replace the first)');
  const lab = lvmConfig(['/dev/loop3'], false);
  t.match(lab, 'global{activation=0');
  t.match(lab, 'a|^/dev/loop3$|');
  t.match(lvmConfig(['/dev/disk/by-id/a.b+c'], true), 'a|^/dev/disk/by-id/a\\.b\\+c$|', 'regex characters in paths are escaped');
  t.throws(() => lvmConfig(['/dev/sd"b'], true), { name: 'StorageParamsError' }, 'a quote cannot reach the config string');
  t.throws(() => new Lvm([], { activation: true, timeoutMs: 1000 }), { name: 'StorageParamsError' });
});

t.test('the lvm driver runs lvchange -ay/-an/--refresh on /dev/VG/LV', async (t) => {
  const { calls, runner } = recorder((argv) => (argv[0] === 'blockdev' ? { stdout: '1073741824\n' } : {}));
  const lvm = new Lvm(['/dev/sdb'], { activation: true, timeoutMs: 5000, runner });
  const d = new LvmActivationDriver({ timeoutMs: 7000, runner });
  const cfg = lvm.config;

  const paths = await d.activate(lvm, VG, ['vol-a', 'vol-b']);
  t.same([...paths], [['vol-a', `/dev/${VG}/vol-a`], ['vol-b', `/dev/${VG}/vol-b`]]);
  t.same(calls[0]!.argv, ['lvm', 'lvchange', '--config', cfg, '--activate', 'y', '--ignoreactivationskip', `${VG}/vol-a`, `${VG}/vol-b`], 'one lvchange -ay for the whole chain');
  t.equal(calls[0]!.opts.timeoutMs, 5000, 'LVM commands get the LVM timeout');
  t.equal(calls[0]!.opts.env?.['LVM_SUPPRESS_FD_WARNINGS'], '1');

  await d.deactivate(lvm, VG, ['vol-b', 'vol-a']);
  t.same(calls[1]!.argv, ['lvm', 'lvchange', '--config', cfg, '--activate', 'n', `${VG}/vol-b`, `${VG}/vol-a`]);

  const size = await d.refresh(lvm, VG, 'vol-a');
  t.same(calls[2]!.argv, ['lvm', 'lvchange', '--config', cfg, '--refresh', `${VG}/vol-a`]);
  t.same(calls[3]!.argv, ['blockdev', '--getsize64', `/dev/${VG}/vol-a`], 'the size is read from the refreshed device');
  t.equal(calls[3]!.opts.timeoutMs, 7000);
  t.equal(size, 1073741824);

  await d.activate(lvm, VG, []);
  await d.deactivate(lvm, VG, []);
  t.equal(calls.length, 4, 'nothing to do, no command');
  t.equal(d.path(VG, 'ids'), `/dev/${VG}/ids`);
});

t.test('lvm driver: an LV still open stays active (logged); other failures throw', async (t) => {
  const inUse = recorder(() => new StorageCommandError(['lvm', 'lvchange'], 5, '  Logical volume vg/base in use.\n'));
  const d = new LvmActivationDriver({ timeoutMs: 1000, runner: inUse.runner });
  await d.deactivate(new Lvm(['/dev/sdb'], { activation: true, timeoutMs: 1000, runner: inUse.runner }), VG, ['base']);
  t.pass('in use: no error');
  const broken = recorder(() => new StorageCommandError(['lvm', 'lvchange'], 5, '  Volume group "x" not found\n'));
  await t.rejects(new LvmActivationDriver({ timeoutMs: 1000, runner: broken.runner })
    .deactivate(new Lvm(['/dev/sdb'], { activation: true, timeoutMs: 1000, runner: broken.runner }), VG, ['base']), { name: 'StorageCommandError' });
});

t.test('lvm metadata commands: lvcreate never activates or zeroes; lvextend tolerates a lost race', async (t) => {
  const { calls, runner } = recorder((argv) => (argv[1] === 'lvextend' ? { rc: 5, stderr: '  New size (32 extents) matches existing size (32 extents).\n' } : {}));
  const lvm = new Lvm(['/dev/loop9'], { activation: false, timeoutMs: 1000, runner });
  await lvm.lvcreate(VG, 'v1', 64, ['IU_x', 'MD_3']);
  t.same(calls[0]!.argv.slice(4), ['-n', 'v1', '-L', '64m', '--activate', 'n', '--zero', 'n', '--wipesignatures', 'n', '--addtag', 'IU_x', '--addtag', 'MD_3', VG]);
  await lvm.lvextend(VG, 'v1', 128);
  t.same(calls[1]!.argv.slice(1), ['lvextend', '--config', lvm.config, '-L', '128m', `${VG}/v1`]);
  t.same(calls[1]!.opts.okCodes, [0, 5]);
  await t.rejects(lvm.lvcreate(VG, '-bad', 1, []), { name: 'StorageParamsError' }, 'a name that looks like an option is refused');
});

t.test('the settings pick the driver', async (t) => {
  t.equal(createActivationDriver(STORAGE_DEFAULTS).kind, 'lvm', 'production default: lvm');
  const loop = createActivationDriver({ ...STORAGE_DEFAULTS, activation: 'loop', loopDataDir: '/srv/san/lv', loopLinkDir: '/run/hv/loop' });
  t.ok(loop instanceof LoopActivationDriver);
  t.equal(loop.path(VG, 'v1'), `/run/hv/loop/${VG}/v1`);
  t.equal((loop as LoopActivationDriver).dataFile(VG, 'v1'), `/srv/san/lv/${VG}/v1`);
});
