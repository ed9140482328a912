import t from 'tap';
import { readFileSync } from 'node:fs';
import { HOOK_POINTS, hookPointsMarkdown } from '../../../agent/hooks/points.js';

t.test('the hook point table follows VDSM: before_* raise except destroy, set_ticket and daemon start; after_* never raise', async (t) => {
  for (const [name, d] of Object.entries(HOOK_POINTS)) {
    const expectRaising = (name.startsWith('before_') && !['before_vm_destroy', 'before_vm_set_ticket', 'before_vdsm_start'].includes(name))
      || name === 'after_disk_prepare';
    t.equal(d.raising, expectRaising, name);
  }
  t.equal(HOOK_POINTS.after_get_all_vm_stats.kind, 'json');
  t.equal(HOOK_POINTS.before_vm_start.kind, 'xml');
});

t.test('docs/hooks.md lists every hook point from the table', async (t) => {
  const doc = readFileSync(new URL('../../../../docs/hooks.md', import.meta.url), 'utf8');
  t.ok(doc.includes(hookPointsMarkdown()), 'regenerate with: node dist/agent/main.js --print-hook-points');
});
