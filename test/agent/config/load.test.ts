import t from 'tap';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, defaults, settingsMarkdown, settingsToml, ConfigError } from '../../../agent/config/load.js';
import { parse } from 'smol-toml';
import { scratchDir } from '../harness.js';

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
  t.throws(() => loadConfig(file), new ConfigError(`${file}: unknown setting "libvirt.urii"`));
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
