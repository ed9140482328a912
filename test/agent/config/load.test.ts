// The config file: defaults, overrides by table, and every value checked
// against its setting's schema, refused at start with the setting named.
import t, { type Test } from 'tap';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { Value } from '@sinclair/typebox/value';
import { loadConfig, defaults, settingsMarkdown, settingsToml, ConfigError, applyOverrides } from '../../../agent/config/load.js';
import { SETTINGS } from '../../../agent/config/settings.js';
import { STORAGE_DEFAULTS } from '../../../agent/storage/index.js';
import { parse } from 'smol-toml';
import { MAIN_JS, scratchDir } from '../harness.js';

t.test('a missing config file means every default', async (t) => {
  t.same(loadConfig('/nonexistent/agent.toml'), defaults());
});

t.test('the TOML file overrides defaults by table, and rejects unknown keys and wrong types', async (t) => {
  const dir = scratchDir('hv-config-');
  const file = join(dir, 'agent.toml');
  writeFileSync(file, '[libvirt]\nuri = "test:///default"\ncallTimeoutMs = 1000\n[rpc]\nport = 12345\n');
  const c = loadConfig(file);
  t.equal(c['libvirt.uri'], 'test:///default');
  t.equal(c['libvirt.callTimeoutMs'], 1000);
  t.equal(c['rpc.port'], 12345);
  t.equal(c['libvirt.keepAliveCount'], defaults()['libvirt.keepAliveCount']);
  writeFileSync(file, '"rpc.port" = 1\n');
  t.equal(loadConfig(file)['rpc.port'], 1, 'dotted keys work too');
  writeFileSync(file, '[libvirt]\nurii = "x"\n');
  t.throws(() => loadConfig(file), { name: 'ConfigError', message: `${file}: unknown setting "libvirt.urii"`, setting: 'libvirt.urii' });
  writeFileSync(file, '[libvirt]\ncallTimeoutMs = "10"\n');
  t.throws(() => loadConfig(file), /must be a number/);
  writeFileSync(file, '[libvirt\n');
  t.throws(() => loadConfig(file), /not valid TOML/);
});

t.test('packaging/agent.toml documents every setting at its default, and docs/config.md lists them', async (t) => {
  const shipped = readFileSync(new URL('../../../../packaging/agent.toml', import.meta.url), 'utf8');
  t.equal(shipped, settingsToml(), 'regenerate with: node dist/agent/main.js --print-settings toml');
  // Uncommented, the documented file must parse back to exactly the defaults.
  const uncommented = shipped.split('\n').map((l) => (/^# \w+ = /.test(l) ? l.slice(2) : l)).join('\n');
  const dir = scratchDir('hv-config-');
  writeFileSync(join(dir, 'all.toml'), uncommented);
  t.same(loadConfig(join(dir, 'all.toml')), defaults());
  t.ok(Object.keys(parse(uncommented)).length > 3);
  const doc = readFileSync(new URL('../../../../docs/config.md', import.meta.url), 'utf8');
  t.ok(doc.includes(settingsMarkdown()), 'regenerate with: node dist/agent/main.js --print-settings md');
});

/** The ConfigError that loading CONTENT throws (the test fails if it loads). */
function refusal(t: Test, content: string): ConfigError {
  const file = join(scratchDir('hv-config-'), 'agent.toml');
  writeFileSync(file, content);
  try {
    loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  t.fail(`${JSON.stringify(content)} was accepted`);
  return new ConfigError('accepted');
}

t.test('log.level = "verbose", a bad virt.domainType or storage.activation is refused, naming the setting and the allowed values', async (t) => {
  const cases: [string, string, string[]][] = [
    ['[log]\nlevel = "verbose"\n', 'log.level', ['debug', 'info', 'warn', 'error']],
    ['[virt]\ndomainType = "xen"\n', 'virt.domainType', ['auto', 'kvm', 'qemu']],
    ['[storage]\nactivation = "devicemapper"\n', 'storage.activation', ['lvm', 'loop']],
    ['[storage]\nfilePreallocation = "zero"\n', 'storage.filePreallocation', ['falloc', 'full']],
    ['[network]\ndhcpClient = "dhclient"\n', 'network.dhcpClient', ['busybox']],
  ];
  for (const [content, setting, allowed] of cases) {
    const e = refusal(t, content);
    t.equal(e.code, 78, `${setting}: code 78 (EX_CONFIG)`);
    t.equal(e.setting, setting, `${setting}: the error names the setting`);
    t.same(e.allowed, allowed, `${setting}: and carries the allowed values`);
    t.ok(e.message.includes(setting) && allowed.every((v) => e.message.includes(`"${v}"`)), `${setting}: the message says both: ${e.message}`);
  }
});

t.test('numbers, integers and flags are checked against their schema', async (t) => {
  const cases: [string, RegExp][] = [
    ['[libvirt]\ncallTimeoutMs = -1\n', /libvirt\.callTimeoutMs must be a number >= 0; got -1/],
    ['[libvirt]\ncallTimeoutMs = inf\n', /libvirt\.callTimeoutMs must be a number >= 0; got Infinity/],
    ['[libvirt]\ncallTimeoutMs = nan\n', /got NaN/],
    ['[rpc]\nport = 70000\n', /rpc\.port must be an integer 0\.\.65535; got 70000/],
    ['[rpc]\nport = 1.5\n', /rpc\.port must be an integer/],
    ['[pki]\ncreateDevCa = "yes"\n', /pki\.createDevCa must be true or false; got "yes"/],
    ['[libvirt]\nuri = 5\n', /libvirt\.uri must be a string; got 5/],
  ];
  for (const [content, re] of cases) t.match(refusal(t, content).message, re, content.trim().replace('\n', ' '));
  t.equal(applyOverrides(defaults(), { 'systemd.watchdogFraction': 0.25, 'rpc.port': 0 }, 'test')['systemd.watchdogFraction'], 0.25, 'fractions and port 0 are fine');
});

t.test('every default satisfies its own setting', async (t) => {
  const bad = Object.entries(SETTINGS).filter(([, s]) => !Value.Check(s, s.default)).map(([k]) => k);
  t.same(bad, [], 'no default outside its own schema');
});

t.test("STORAGE_DEFAULTS are the settings table's storage.* defaults", async (t) => {
  const d = defaults() as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(STORAGE_DEFAULTS)) t.equal(v, d[`storage.${k}`], `storage.${k}`);
});

t.test('hostvisord with a bad setting exits 78 at start with one line naming it, and no stack trace', async (t) => {
  const file = join(scratchDir('hv-config-'), 'agent.toml');
  writeFileSync(file, '[log]\nlevel = "verbose"\n');
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, [MAIN_JS, '--config', file], { timeout: 30_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr });
    });
    child.stdin?.end();
  });
  t.equal(r.code, 78, 'exit status 78 (EX_CONFIG; the unit does not restart on it)');
  t.equal(r.stderr, `hostvisord: ${file}: log.level must be one of "debug", "info", "warn", "error"; got "verbose"\n`);
  const unit = readFileSync(new URL('../../../../packaging/systemd/hostvisord.service', import.meta.url), 'utf8');
  t.match(unit, /^RestartPreventExitStatus=78$/m, 'hostvisord.service does not restart on it');
});
