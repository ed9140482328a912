// Whether a module is the program node was started with, for the CLIs'
// "run main() when executed, not when imported" guard. argv[1] is the path as
// given (a symlink such as /usr/bin/hostvisor, or a symlinked folder), while
// import.meta.url names the real file: comparing them as strings makes a
// command started through a symlink silently do nothing and exit 0.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function isMainModule(importMetaUrl: string, argv1: string | undefined = process.argv[1]): boolean {
  if (!argv1) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(importMetaUrl));
  } catch {
    return false; // argv[1] names no file (node -e, a REPL): not us
  }
}
