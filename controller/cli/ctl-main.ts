// Entry point of bin/hostvisor-ctl.
import { main } from './hostvisor-ctl.js';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`hostvisor-ctl: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
