// Reads test/lab/programs.tsv (the one list of external programs and their
// Debian packages) and scans the source tree for the programs it runs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { basename, shellPrograms, type FoundProgram } from './shell-scan.js';
import { tsPrograms } from './ts-scan.js';

export interface ListedProgram {
  /** A name looked up on PATH (sbin folders included), or an absolute path (a glob is allowed). */
  program: string;
  /** The Debian package that provides it; '-' for a prerequisite that setup.sh does not install. */
  package: string;
  usedBy: string;
  line: number;
}

export interface Use extends FoundProgram {
  file: string;
}

/** The folders the scan reads, relative to the repository. */
export const SCANNED = ['agent', 'api', 'controller', 'test', 'scripts', 'bench', 'hooks', 'bin', 'packaging', '.ci'];
const SKIPPED_DIRS = new Set(['node_modules', 'build', 'dist', '.git', '__pycache__']);
/**
 * Files the scan leaves out, with the reason. Nothing else is left out: a
 * program the scan finds must be on the list.
 */
export const NOT_SCANNED: Record<string, string> = {
  'test/lab/guest/init': "the test guest's init: runs inside the guest, on the busybox of its initramfs",
  'test/lab/programs.test.ts': "the scan's own test: its fixtures name made-up programs",
};

export function parseProgramList(text: string): ListedProgram[] {
  const out: ListedProgram[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const cols = line.split('\t');
    if (cols.length !== 3 || cols.some((c) => c.trim() === '' || c !== c.trim())) {
      throw new Error(`programs.tsv line ${i + 1}: want 3 tab-separated, non-empty columns: ${JSON.stringify(line)}`);
    }
    out.push({ program: cols[0]!, package: cols[1]!, usedBy: cols[2]!, line: i + 1 });
  });
  return out;
}

/** The programs one file runs, by its kind (TypeScript, shell, Python, systemd unit); [] for other files. */
export function programsOf(file: string, text: string): FoundProgram[] {
  const ext = extname(file);
  if (ext === '.ts' || ext === '.mts') return tsPrograms(text, file);
  const shebang = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(text);
  const interp = shebang ? (basename(shebang[1]!) === 'env' && shebang[2] ? shebang[2] : shebang[1]!) : undefined;
  const found: FoundProgram[] = interp ? [{ program: interp, line: 1 }] : [];
  const kind = interp ? basename(interp) : '';
  if (ext === '.sh' || kind === 'sh' || kind === 'bash' || kind === 'dash') {
    return [...found, ...shellPrograms(interp ? text.slice(text.indexOf('\n') + 1) : text, interp ? 2 : 1)];
  }
  if (ext === '.py' || kind.startsWith('python')) return [...found, ...pythonPrograms(text)];
  if (ext === '.service') return unitPrograms(text);
  if (ext === '.gyp') return gypPrograms(text);
  return found;
}

/**
 * Python: subprocess calls and hooking.execCmd with a literal argv, argv
 * prefixes (`argv = ['setsid'] + argv`), os.exec*, and `['sh', '-c', '...']`.
 */
export function pythonPrograms(text: string): FoundProgram[] {
  const found: FoundProgram[] = [];
  const lineAt = (index: number): number => text.slice(0, index).split('\n').length;
  const patterns = [
    /\bsubprocess\.\w+\(\s*\[\s*(['"])([^'"]+)\1/g,
    /\bexecCmd\(\s*\[\s*(['"])([^'"]+)\1/g,
    /\b(?:argv|prefix|cmd|command)\s*=\s*\[\s*(['"])([^'"]+)\1/g,
    /\bos\.exec\w*\(\s*(['"])([^'"]+)\1/g,
  ];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) found.push({ program: m[2]!, line: lineAt(m.index) });
  }
  for (const m of text.matchAll(/\[\s*(['"])(?:\/bin\/)?(?:sh|bash)\1\s*,\s*(['"])-c\2\s*,\s*'([^']*)'/g)) {
    found.push(...shellPrograms(m[3]!.replace(/\\n/g, '\n'), lineAt(m.index)));
  }
  return found;
}

/** gyp files: the commands of <!(...) and <!@(...) expansions. */
export function gypPrograms(text: string): FoundProgram[] {
  const found: FoundProgram[] = [];
  for (const m of text.matchAll(/<!@?\(([^)]*)\)/g)) {
    found.push(...shellPrograms(m[1]!.replace(/\\"/g, '"'), text.slice(0, m.index).split('\n').length));
  }
  return found;
}

/** systemd units: the program of each Exec*= line. */
export function unitPrograms(text: string): FoundProgram[] {
  const found: FoundProgram[] = [];
  text.split('\n').forEach((l, i) => {
    const m = /^Exec\w*=[-@:+!]*(\S+)/.exec(l.trim());
    if (m) found.push({ program: m[1]!, line: i + 1 });
  });
  return found;
}

/**
 * Whether a program the code names is something to look up in the list: a
 * bare name, or an absolute path. A relative path (./x, dist/y.js) is a file
 * of the project, not an installed program.
 */
export function isExternal(program: string): boolean {
  if (program.startsWith('/')) return !/^\/(proc|sys|dev|tmp|nonexistent)\//.test(program);
  return /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(program);
}

/** Every file under the scanned folders, relative to the repository, sorted. */
export function sourceFiles(repo: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(repo, dir)).sort()) {
      if (SKIPPED_DIRS.has(name)) continue;
      const rel = dir ? `${dir}/${name}` : name;
      const st = statSync(join(repo, rel));
      if (st.isDirectory()) walk(rel);
      else if (st.isFile() && st.size < 1_000_000) out.push(rel);
    }
  };
  for (const d of SCANNED) {
    try { statSync(join(repo, d)); } catch { continue; }
    walk(d);
  }
  return out;
}

/**
 * A comment with this text on the line of a use, or on the line above it, says
 * the program is deliberately not a dependency (and why).
 */
export const NOT_A_DEPENDENCY = 'not in programs.tsv:';

/** Every external program one file runs, with where (uses marked NOT_A_DEPENDENCY left out). */
export function scanFile(file: string, text: string): Use[] {
  const lines = text.split('\n');
  const marked = (line: number): boolean => [lines[line - 1], lines[line - 2]].some((l) => l?.includes(NOT_A_DEPENDENCY));
  return programsOf(file, text).filter((f) => isExternal(f.program) && !marked(f.line)).map((f) => ({ ...f, file }));
}

/** Every external program the source runs, with where. */
export function scanTree(repo: string): Use[] {
  const uses: Use[] = [];
  for (const file of sourceFiles(repo)) {
    if (NOT_SCANNED[file] !== undefined) continue;
    const text = readFileSync(join(repo, file), 'utf8');
    if (!text.includes('\0')) uses.push(...scanFile(file, text));
  }
  return uses;
}

/** The uses whose program is not on the list (matched by name: /usr/sbin/lvm is `lvm`). */
export function unlisted(uses: readonly Use[], list: readonly ListedProgram[]): Use[] {
  const names = new Set(list.map((l) => basename(l.program)));
  return uses.filter((u) => !names.has(basename(u.program)));
}
