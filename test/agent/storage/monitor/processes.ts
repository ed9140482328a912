// What the monitor tests look for among this machine's processes: the dd of a
// read check on a given file, and lvm commands on a given VG. Other tests run
// at the same time, so every match is on the exact path or VG name.
import { execFileSync } from 'node:child_process';

function commandLines(): string[] {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8', timeout: 10_000 }).split('\n');
}

/** dd processes reading `path` right now. */
export function readersOf(path: string): number {
  // dd runs by its absolute path (/usr/bin/dd).
  return commandLines().filter((l) => /^(\S*\/)?dd /.test(l) && l.includes(`if=${path} `)).length;
}

/** `lvm <sub>` processes (any subcommand when sub is undefined) whose arguments name the VG. */
export function lvmCommandsOn(vg: string, sub?: string): string[] {
  return commandLines().filter((l) => /^(\S*\/)?lvm /.test(l) && (sub === undefined || l.split(' ')[1] === sub) && l.includes(vg));
}
