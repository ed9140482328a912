// Runs a command to its end with a bound, for the bootstrap's one-off steps (enrol).
import { spawn } from 'node:child_process';

export function runToEnd(command: string, args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const add = (b: Buffer) => { if (output.length < 65_536) output += b.toString(); };
    child.stdout.on('data', add);
    child.stderr.on('data', add);
    const timer = setTimeout(() => { output += `\n(killed after ${timeoutMs} ms)`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: 127, output: e.message }); });
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? (signal ? 128 : 1), output }); });
  });
}
