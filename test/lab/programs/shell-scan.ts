// The programs a shell script runs: the command word of every simple command,
// in command substitutions, trap/eval strings and `sh -c` scripts too, and the
// command that a wrapper (timeout, setsid, nsenter, env, exec...) runs.
// A heuristic reader of bash, not a parser: it knows quoting, comments,
// here-documents, substitutions, case patterns, for headers, [[ ]] and (( )),
// function definitions and assignments. A command word that is an expansion
// ("$cmd") is unknown and skipped, unless it names a variable assigned one
// literal value in the same script (PY=/usr/bin/python3; "$PY" ...).

export interface FoundProgram {
  program: string;
  line: number;
}

interface Word {
  kind: 'word';
  /** The literal text (expansions contribute nothing). */
  text: string;
  /** No expansion in it. */
  literal: boolean;
  /** The source text, quotes and all. */
  raw: string;
  line: number;
}
interface Op { kind: 'op'; text: string; line: number }
type Token = Word | Op;

const BUILTINS = new Set([
  '.', ':', '[', '[[', '((', 'alias', 'bg', 'bind', 'break', 'builtin', 'caller', 'cd', 'command', 'compgen',
  'complete', 'compopt', 'continue', 'declare', 'dirs', 'disown', 'echo', 'enable', 'eval', 'exec', 'exit',
  'export', 'false', 'fc', 'fg', 'getopts', 'hash', 'help', 'history', 'jobs', 'kill', 'let', 'local', 'logout',
  'mapfile', 'popd', 'printf', 'pushd', 'pwd', 'read', 'readarray', 'readonly', 'return', 'set', 'shift', 'shopt',
  'source', 'suspend', 'test', 'times', 'trap', 'true', 'type', 'typeset', 'ulimit', 'umask', 'unalias', 'unset', 'wait',
]);
/** Reserved words after which a command starts. */
const LEADING = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', 'time', '{']);
/** Reserved words that end a compound command: what follows is a redirection or an operator. */
const CLOSING = new Set(['fi', 'done', 'esac', '}']);
const SEPARATORS = new Set([';', '&&', '||', '|', '|&', '&', '(', ')', '\n', ';;', ';&', ';;&']);
const REDIRECTS = new Set(['<', '>', '>>', '>|', '<>', '&>', '&>>', '>&', '<&', '<<<']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/;
const SHELLS = new Set(['sh', 'bash', 'dash']);
/** Options of command-running programs that take their value as the next word. */
const OPTION_VALUES: Record<string, ReadonlySet<string>> = {
  timeout: new Set(['-s', '--signal', '-k', '--kill-after']),
  env: new Set(['-u', '--unset', '-C', '--chdir', '-S', '--split-string']),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '--class', '-n', '--classdata', '-p', '--pid']),
  nsenter: new Set(['-t', '--target', '-S', '--setuid', '-G', '--setgid']),
  unshare: new Set(['--propagation', '--setgroups', '-S', '--setuid', '-G', '--setgid', '-R', '--root', '-w', '--wd']),
  stdbuf: new Set(['-i', '-o', '-e']),
  xargs: new Set(['-a', '-d', '-E', '-I', '-L', '-n', '-P', '-s']),
};

export function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** What a script inherits from the one that contains it (functions and variables). */
export interface ShellContext {
  functions: ReadonlySet<string>;
  vars: ReadonlyMap<string, string>;
}

interface Nested { text: string; line: number }

/** The programs the script runs, with their line numbers (1-based, offset by `firstLine - 1`). */
export function shellPrograms(script: string, firstLine = 1, outer?: ShellContext): FoundProgram[] {
  const found: FoundProgram[] = [];
  const nested: Nested[] = [];
  const tokens = lex(script, firstLine, nested);
  const ctx: ShellContext = {
    functions: new Set([...(outer?.functions ?? []), ...functionNames(tokens)]),
    vars: new Map([...(outer?.vars ?? []), ...assignments(tokens)]),
  };
  new CommandReader(tokens, found, ctx, nested).read();
  for (const n of nested) found.push(...shellPrograms(n.text, n.line, ctx));
  return found;
}

function functionNames(t: Token[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < t.length; i++) {
    const w = t[i]!;
    if (w.kind !== 'word') continue;
    if (w.text === 'function' && t[i + 1]?.kind === 'word') out.add(t[i + 1]!.text);
    if (isOp(t[i + 1], '(') && isOp(t[i + 2], ')')) out.add(w.text);
  }
  return out;
}

/** VAR=literal assignments made once (a variable assigned twice, or with expansions, is unknown). */
function assignments(tokens: Token[]): Map<string, string> {
  const seen = new Map<string, string | undefined>();
  for (const t of tokens) {
    if (t.kind !== 'word') continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(t.text);
    if (!m) continue;
    const value = t.literal && m[2] !== '' ? m[2] : undefined;
    seen.set(m[1]!, seen.has(m[1]!) ? undefined : value);
  }
  const out = new Map<string, string>();
  for (const [k, v] of seen) if (v !== undefined) out.set(k, v);
  return out;
}

// ---------- lexer ----------

function lex(src: string, firstLine: number, nestedOut: Nested[]): Token[] {
  const tokens: Token[] = [];
  let line = firstLine;
  let i = 0;
  let word: Word | undefined;
  let wordStart = 0;
  let atWordStart = true;
  const heredocs: Array<{ delim: string; strip: boolean }> = [];
  const wordPart = (s: string, literal = true): void => {
    if (!word) { word = { kind: 'word', text: '', literal: true, raw: '', line }; wordStart = i; }
    word.text += s;
    if (!literal) word.literal = false;
  };
  const endWord = (): void => {
    if (word) tokens.push({ ...word, raw: src.slice(wordStart, i) });
    word = undefined;
  };
  const nested = (text: string, at: number): void => { nestedOut.push({ text, line: at }); };
  /** Index just after the `close` that balances an opener before `from` (quotes respected). */
  const balanced = (from: number, open: string, close: string): number => {
    let depth = 1;
    let j = from;
    while (j < src.length && depth > 0) {
      const c = src[j]!;
      if (c === '\\') { j += 2; continue; }
      if (c === "'") { j = src.indexOf("'", j + 1) + 1 || src.length; continue; }
      if (c === '"') { j = closingQuote(src, j + 1) + 1; continue; }
      if (c === open) depth++;
      else if (c === close) depth--;
      j++;
    }
    return j;
  };
  const countLines = (from: number, to: number): void => {
    for (let j = from; j < to; j++) if (src[j] === '\n') line++;
  };
  /** `$...` at src[i]; returns the index after it. */
  const dollar = (): number => {
    const n = src[i + 1];
    if (n === '(' && src[i + 2] === '(') { const e = balanced(i + 3, '(', ')') + 1; countLines(i, e); return e; }
    if (n === '(') {
      const e = balanced(i + 2, '(', ')');
      nested(src.slice(i + 2, e - 1), line);
      countLines(i, e);
      return e;
    }
    if (n === '{') { const e = balanced(i + 2, '{', '}'); countLines(i, e); return e; }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9@*#?$!-]/.exec(src.slice(i + 1));
    return i + 1 + (m ? m[0].length : 0);
  };

  while (i < src.length) {
    const c = src[i]!;
    if (c === '\\' && src[i + 1] === '\n') { i += 2; line++; continue; }
    if (c === '\\') { wordPart(src[i + 1] ?? ''); i += 2; atWordStart = false; continue; }
    if (c === '\n') {
      endWord();
      tokens.push({ kind: 'op', text: '\n', line });
      line++;
      i++;
      atWordStart = true;
      // Here-document bodies are data, not commands.
      for (const h of heredocs.splice(0)) {
        for (;;) {
          if (i >= src.length) break;
          const eol = src.indexOf('\n', i);
          const text = src.slice(i, eol < 0 ? src.length : eol);
          i = eol < 0 ? src.length : eol + 1;
          line++;
          if ((h.strip ? text.replace(/^\t+/, '') : text) === h.delim) break;
        }
      }
      continue;
    }
    if (c === ' ' || c === '\t') { endWord(); i++; atWordStart = true; continue; }
    if (c === '#' && word === undefined) {
      const eol = src.indexOf('\n', i);
      i = eol < 0 ? src.length : eol;
      continue;
    }
    if (c === "'") {
      const e = src.indexOf("'", i + 1);
      const end = e < 0 ? src.length : e;
      wordPart(src.slice(i + 1, end));
      countLines(i, end);
      i = end + 1;
      atWordStart = false;
      continue;
    }
    if (c === '"') {
      wordPart('');
      const end = closingQuote(src, i + 1);
      let j = i + 1;
      while (j < end) {
        const d = src[j]!;
        if (d === '\\') { wordPart(src[j + 1] ?? ''); j += 2; continue; }
        if (d === '$' || d === '`') {
          const quote = i;
          i = j;
          const e = d === '$' ? dollar() : backtick();
          if (d === '`' || e > j + 1) wordPart('', false);
          else wordPart('$');
          i = quote;
          j = e;
          continue;
        }
        if (d === '\n') line++;
        wordPart(d);
        j++;
      }
      i = end + 1;
      atWordStart = false;
      continue;
    }
    if (c === '$') {
      const e = dollar();
      if (e === i + 1) wordPart('$'); else wordPart('', false);
      i = e;
      atWordStart = false;
      continue;
    }
    if (c === '`') { i = backtick(); wordPart('', false); atWordStart = false; continue; }
    if ((c === '<' || c === '>') && src[i + 1] === '(') {
      endWord();
      const e = balanced(i + 2, '(', ')');
      nested(src.slice(i + 2, e - 1), line);
      countLines(i, e);
      tokens.push({ kind: 'word', text: '', literal: false, raw: src.slice(i, e), line });
      i = e;
      continue;
    }
    if (c === '(' && src[i + 1] === '(' && word === undefined && atWordStart) {
      // (( arithmetic )), alone or in a for header: no commands inside.
      const e = balanced(i + 2, '(', ')') + 1;
      countLines(i, e);
      tokens.push({ kind: 'word', text: '((', literal: true, raw: '((', line });
      i = e;
      continue;
    }
    if (c === '(' && word && /^[A-Za-z_][A-Za-z0-9_]*\+?=$/.test(word.text)) {
      // NAME=( array ): words, not commands.
      const e = balanced(i + 1, '(', ')');
      countLines(i, e);
      word.literal = false;
      i = e;
      continue;
    }
    const op = /^(;;&|;;|;&|&&|\|\||\|&|&>>|&>|<<<|<<-|<<|>>|>\||<>|>&|<&|[;&|()<>])/.exec(src.slice(i))?.[0];
    if (op) {
      // "2>" / "8>&-": the digits are the descriptor, not a word.
      if ((op[0] === '<' || op[0] === '>') && word && word.literal && /^\d+$/.test(word.text)) word = undefined;
      endWord();
      i += op.length;
      if (op === '<<' || op === '<<-') {
        while (src[i] === ' ' || src[i] === '\t') i++;
        const m = /^(['"]?)([^\s'";&|<>()]+)\1/.exec(src.slice(i));
        if (m) { heredocs.push({ delim: m[2]!, strip: op === '<<-' }); i += m[0].length; }
        tokens.push({ kind: 'op', text: '<<', line });
      } else {
        tokens.push({ kind: 'op', text: op, line });
      }
      atWordStart = true;
      continue;
    }
    wordPart(c);
    atWordStart = false;
    i++;
  }
  endWord();
  return tokens;

  function backtick(): number {
    let j = i + 1;
    while (j < src.length && src[j] !== '`') j += src[j] === '\\' ? 2 : 1;
    nested(src.slice(i + 1, j), line);
    countLines(i, j);
    return j + 1;
  }
}

/** Index of the `"` that closes a double-quoted string whose text starts at `from`. */
function closingQuote(src: string, from: number): number {
  let j = from;
  while (j < src.length && src[j] !== '"') {
    if (src[j] === '\\') j++;
    else if (src[j] === '$' && src[j + 1] === '(') {
      let depth = 1;
      j += 2;
      while (j < src.length && depth > 0) {
        if (src[j] === '(') depth++;
        else if (src[j] === ')') depth--;
        if (depth > 0) j++;
      }
    }
    j++;
  }
  return Math.min(j, src.length);
}

// ---------- commands ----------

class CommandReader {
  private readonly functions: ReadonlySet<string>;
  private readonly vars: ReadonlyMap<string, string>;

  /** Scripts in trap/eval/sh -c strings go to `nested`, scanned with this script's context. */
  constructor(private readonly t: Token[], private readonly found: FoundProgram[], ctx: ShellContext, private readonly nested: Nested[]) {
    this.functions = ctx.functions;
    this.vars = ctx.vars;
  }

  read(): void {
    const t = this.t;
    let expect = true; // the next word starts a command
    let skipUntil: string | undefined; // skipping words until this one (]], in, do header end)
    let caseDepth = 0;
    let inPattern = false;
    for (let i = 0; i < t.length; i++) {
      const tok = t[i]!;
      if (tok.kind === 'op') {
        if (REDIRECTS.has(tok.text)) { i++; continue; } // its target
        if (inPattern && tok.text === ')') { inPattern = false; expect = true; continue; }
        if (tok.text === ';;' || tok.text === ';&' || tok.text === ';;&') { inPattern = caseDepth > 0; expect = true; continue; }
        if (SEPARATORS.has(tok.text)) {
          if (skipUntil === undefined) expect = true;
        }
        continue;
      }
      if (skipUntil !== undefined) {
        if (tok.text === skipUntil) {
          skipUntil = undefined;
          if (tok.text === 'in' && caseDepth > 0) inPattern = true;
          expect = tok.text === 'do';
        }
        continue;
      }
      if (inPattern) {
        if (tok.text === 'esac') { caseDepth--; inPattern = false; expect = false; }
        continue;
      }
      if (!expect) continue;
      if (ASSIGNMENT.test(tok.text)) continue;
      if (LEADING.has(tok.text)) continue;
      if (CLOSING.has(tok.text)) { if (tok.text === 'esac') caseDepth--; expect = false; continue; }
      if (tok.text === 'case') { caseDepth++; skipUntil = 'in'; continue; }
      if (tok.text === 'for' || tok.text === 'select') { skipUntil = 'do'; continue; }
      if (tok.text === '[[') { skipUntil = ']]'; continue; }
      if (tok.text === 'function') { i++; continue; }
      if (isOp(t[i + 1], '(') && isOp(t[i + 2], ')')) { i += 2; continue; }
      this.command(i);
      expect = false;
    }
  }

  /** The program named at token i (if any), and what it runs in turn. */
  private command(i: number): void {
    const w = this.t[i];
    if (w?.kind !== 'word') return;
    const name = this.resolve(w);
    if (name === undefined || name === '' || this.functions.has(name)) return;
    const base = basename(name);
    if (BUILTINS.has(name)) {
      if (name === 'exec' || name === 'command' || name === 'builtin') {
        if (name === 'command' && /^-[vV]/.test(this.word(i + 1)?.text ?? '')) return; // a lookup, not a run
        this.command(i + 1 + skipOptions(this.args(i + 1), 0));
      }
      if ((name === 'trap' || name === 'eval') && this.word(i + 1)?.literal) this.script(this.word(i + 1)!);
      return;
    }
    this.found.push({ program: name, line: w.line });
    if (SHELLS.has(base)) {
      for (let j = i + 1; this.word(j); j++) {
        if (this.word(j)!.text === '-c' && this.word(j + 1)?.literal) { this.script(this.word(j + 1)!); break; }
      }
      return;
    }
    const wrapped = wrappedCommand(base, this.args(i + 1));
    if (wrapped !== undefined) this.command(i + 1 + wrapped);
  }

  /** The words from token i to the end of the command; undefined for one that is not literal. */
  private args(i: number): Array<string | undefined> {
    const out: Array<string | undefined> = [];
    for (let j = i; this.word(j); j++) {
      const w = this.word(j)!;
      // --net="/run/netns/$ns" is still an option, whatever its value.
      out.push(this.resolve(w) ?? (w.text.startsWith('-') ? w.text : undefined));
    }
    return out;
  }

  private word(i: number): Word | undefined {
    const t = this.t[i];
    return t?.kind === 'word' ? t : undefined;
  }

  private resolve(w: Word): string | undefined {
    if (w.literal) return w.text;
    const v = /^"?\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?"?$/.exec(w.raw)?.[1];
    return v === undefined ? undefined : this.vars.get(v);
  }

  private script(w: Word): void {
    this.nested.push({ text: w.text, line: w.line });
  }
}

/**
 * For a program that runs another one (timeout 5 virsh ..., ip netns exec NS
 * cmd, find -exec cmd), the index in `args` of that command; else undefined.
 */
export function wrappedCommand(program: string, args: ReadonlyArray<string | undefined>): number | undefined {
  switch (program) {
    case 'timeout':
      return skipOptions(args, 0, program) + 1; // after the duration
    case 'env': {
      let j = skipOptions(args, 0, program);
      while (/^[A-Za-z_][A-Za-z0-9_]*=/.test(args[j] ?? '')) j++;
      return j;
    }
    case 'nice': case 'ionice': case 'setsid': case 'nsenter': case 'nohup': case 'stdbuf': case 'xargs': case 'unshare':
      return skipOptions(args, 0, program);
    case 'chroot':
      return skipOptions(args, 0, program) + 1;
    case 'ip':
      return args[0] === 'netns' && args[1] === 'exec' ? 3 : undefined;
    case 'find': {
      const j = args.findIndex((a) => a === '-exec' || a === '-execdir');
      return j < 0 ? undefined : j + 1;
    }
    default:
      return undefined;
  }
}

/** The index of the first word after the options (and their separate values) of `program`, from `i`. */
function skipOptions(args: ReadonlyArray<string | undefined>, i: number, program = ''): number {
  const valued = OPTION_VALUES[program];
  let j = i;
  while (args[j]?.startsWith('-')) {
    if (args[j] === '--') return j + 1;
    j += valued?.has(args[j]!) ? 2 : 1;
  }
  return j;
}

function isOp(t: Token | undefined, text: string): boolean {
  return t?.kind === 'op' && t.text === text;
}
