import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, defaults, settingsMarkdown, ConfigError } from '../../../agent/config/load.js';

t.test('a missing config file means every default', async (t) => {
  t.same(loadConfig('/nonexistent/hostvisord.json'), defaults());
});

t.test('the config file overrides defaults and rejects unknown keys and wrong types', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hv-config-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ 'libvirt.uri': 'test:///default', 'libvirt.callTimeoutMs': 1000 }));
  const c = loadConfig(file);
  t.equal(c['libvirt.uri'], 'test:///default');
  t.equal(c['libvirt.callTimeoutMs'], 1000);
  t.equal(c['libvirt.keepAliveCount'], defaults()['libvirt.keepAliveCount']);
  writeFileSync(file, JSON.stringify({ 'libvirt.urii': 'x' }));
  t.throws(() => loadConfig(file), new ConfigError(`${file}: unknown setting "libvirt.urii"`));
  writeFileSync(file, JSON.stringify({ 'libvirt.callTimeoutMs': '10' }));
  t.throws(() => loadConfig(file), /must be a number/);
  writeFileSync(file, '{ not json');
  t.throws(() => loadConfig(file), /not valid JSON/);
});

t.test('docs/config.md lists every setting as settings.ts declares it', async (t) => {
  const doc = readFileSync(new URL('../../../../docs/config.md', import.meta.url), 'utf8');
  t.ok(doc.includes(settingsMarkdown()), 'regenerate with: node dist/agent/main.js --print-settings');
});
