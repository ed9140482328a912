// Preloaded (NODE_OPTIONS=--import, set by scripts/run-tests.sh) into every node process of a test
// run, before tap's own --import of @tapjs/processinfo. That module registers a module loader hook
// (module.register: a hook thread every module load goes through) only to record which files each
// process loaded, for coverage and `tap --changed`, neither of which this project uses (coverage is
// off in package.json). The hook cost each test file ~0.5 s of CPU at start-up, and each daemon a
// test spawns (the controller: ~1 s of its ~2 s) as much again, on a 2-core machine running
// three lanes. So its registration is skipped; the rest of processinfo (its record at exit, its
// NODE_OPTIONS for children) stays. With coverage on, nothing is skipped.
import Module from 'node:module';

if (process.env['_TAPJS_PROCESSINFO_COVERAGE_'] !== '1' && typeof Module.register === 'function') {
  const register = Module.register;
  Module.register = function registerUnlessProcessinfo(specifier, ...rest) {
    if (String(specifier).includes('/@tapjs/processinfo/')) return undefined;
    return register.call(this, specifier, ...rest);
  };
}
