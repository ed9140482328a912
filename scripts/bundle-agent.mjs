// Bundles the compiled agent (dist/agent/main.js and everything it imports, our code and
// its npm dependencies) into ONE file, dist/agent/hostvisord.js, which hostvisord.service
// runs (and so the tests and benchmarks, through test/agent/harness.ts).
//
// Why: loading ~470 ES modules one by one (TypeBox alone is ~250 files) costs an idle
// agent ~8 MiB of V8 heap and malloc (module records, loader caches, one source string
// each) and runs the loader's path code hot enough for V8 to start its optimizing
// compiler during start-up. One module avoids both (bench/stats.ts, rss_idle_mb).
//
// Minified, but functions and classes keep their names (keepNames), so stack traces and
// error names stay readable; hostvisord.js.map maps the bundle back to the TypeScript
// sources for a stack trace read offline. hostvisord.meta.json lists the inputs, so that the test
// harness can tell a bundle older than its inputs (after a bare `tsc`) and rebuild it.
//
//   node scripts/bundle-agent.mjs        (scripts/build.sh runs it after tsc, with --if-stale:
//                                        skipped when the bundle is newer than every input)
import { build } from 'esbuild-wasm';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'agent', 'hostvisord.js');

/** True when the bundle and its list of inputs exist and no input is newer (or gone). */
function upToDate() {
  try {
    const bundledAt = statSync(out).mtimeMs;
    const listed = JSON.parse(readFileSync(out.replace(/\.js$/, '.meta.json'), 'utf8')).inputs;
    return listed.length > 0 && listed.every((f) => statSync(join(root, f)).mtimeMs <= bundledAt);
  } catch {
    return false;
  }
}
if (process.argv.includes('--if-stale') && upToDate()) {
  console.log('bundle: dist/agent/hostvisord.js is newer than all its inputs, skipped');
  process.exit(0);
}

const result = await build({
  absWorkingDir: root,
  entryPoints: ['dist/agent/main.js'],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  keepNames: true,
  legalComments: 'none',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies (ws) call require() for node: built-ins; an ES module has none.
  banner: { js: "import { createRequire as __hvCreateRequire } from 'node:module'; const require = __hvCreateRequire(import.meta.url);" },
});
const inputs = Object.keys(result.metafile.inputs);
writeFileSync(out.replace(/\.js$/, '.meta.json'), JSON.stringify({ inputs }) + '\n');
