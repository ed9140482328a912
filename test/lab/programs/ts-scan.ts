// The programs a TypeScript file spawns, read from its syntax tree (no type
// checking): literal program names given to
//  - node:child_process (spawn, execFile, their Sync forms, promisify(execFile)),
//    and exec/execSync command strings;
//  - the agent's runner (agent/process.ts) and anything that takes an argv
//    the same way: a call of `runner`, `run`/`runProcess`/`runCommand` imported
//    from a runner module, or a method named runner/spawn/exec/execArgv whose
//    argument is an argv array (`host.spawn(['node', ...])`);
//  - resolveTool('name');
//  - scripts embedded in the source: a string that starts with `#!` (its
//    interpreter, and its commands when it is a shell script), the script of
//    `sh -c '...'`, and hook bodies given to addHook() (test fixtures).
// A program given as a const holding a literal is followed; anything computed
// is unknown and skipped.
import ts from 'typescript';
import { basename, shellPrograms, wrappedCommand, type FoundProgram } from './shell-scan.js';

const CHILD_PROCESS = new Set(['node:child_process', 'child_process']);
/** child_process functions whose first argument is a program. */
const CP_PROGRAM = new Set(['spawn', 'spawnSync', 'execFile', 'execFileSync']);
/** child_process functions whose first argument is a shell command line. */
const CP_SHELL = new Set(['exec', 'execSync']);
/** Names of argv runners when imported from a module of ours. */
const RUNNER_IMPORTS = new Set(['run', 'runProcess', 'runCommand', 'startDetached']);
/** Method names that take an argv array: spawn*, exec*, and these. */
const ARGV_METHODS = new Set(['runner', 'runProcess', 'runCommand', 'inHost', 'inPeer']);
const isArgvMethod = (name: string): boolean => ARGV_METHODS.has(name) || /^(spawn|exec)([A-Z]\w*)?$/.test(name);
/** Calls whose argument at this index is a shell script body. */
const SHELL_BODY_ARGS: Record<string, number> = { addHook: 3 };
const SHELLS = new Set(['sh', 'bash', 'dash']);

export function tsPrograms(source: string, fileName = 'x.ts'): FoundProgram[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const found: FoundProgram[] = [];
  const cp = new Map<string, string>(); // local name -> child_process function
  const cpNamespaces = new Set<string>();
  const runners = new Set<string>(['runner']);
  const consts = new Map<string, string | undefined>();
  const lineOf = (n: ts.Node): number => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const add = (program: string, at: ts.Node): void => { found.push({ program, line: lineOf(at) }); };

  // Pass 1: imports and const string literals.
  const collect = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const from = n.moduleSpecifier.text;
      const b = n.importClause;
      const named = b?.namedBindings && ts.isNamedImports(b.namedBindings) ? b.namedBindings.elements : [];
      if (CHILD_PROCESS.has(from)) {
        for (const e of named) cp.set(e.name.text, (e.propertyName ?? e.name).text);
        if (b?.name) cpNamespaces.add(b.name.text);
        if (b?.namedBindings && ts.isNamespaceImport(b.namedBindings)) cpNamespaces.add(b.namedBindings.name.text);
      } else if (from.startsWith('.')) {
        for (const e of named) if (RUNNER_IMPORTS.has((e.propertyName ?? e.name).text)) runners.add(e.name.text);
      }
    }
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer) {
      const init = n.initializer;
      const name = n.name.text;
      if (ts.isStringLiteralLike(init)) consts.set(name, consts.has(name) ? undefined : init.text);
      // const run = promisify(execFile)
      if (ts.isCallExpression(init) && ts.isIdentifier(init.expression) && init.expression.text === 'promisify') {
        const arg = init.arguments[0];
        if (arg && ts.isIdentifier(arg) && cp.has(arg.text)) cp.set(name, cp.get(arg.text)!);
      }
    }
    ts.forEachChild(n, collect);
  };
  collect(sf);

  const literal = (e: ts.Expression | undefined): string | undefined => {
    if (!e) return undefined;
    if (ts.isStringLiteralLike(e)) return e.text;
    if (ts.isIdentifier(e)) return consts.get(e.text);
    if (ts.isAsExpression(e) || ts.isParenthesizedExpression(e)) return literal(e.expression);
    return undefined;
  };
  /** A string's text for scanning; a template's substitutions become a placeholder expansion. */
  const scriptText = (e: ts.Expression | undefined): string | undefined => {
    if (!e) return undefined;
    if (ts.isStringLiteralLike(e)) return e.text;
    if (ts.isTemplateExpression(e)) return e.head.text + e.templateSpans.map((s) => `\${HV_SUBST}${s.literal.text}`).join('');
    return undefined;
  };
  const script = (e: ts.Expression | undefined): void => {
    const text = scriptText(e);
    if (text !== undefined && e) found.push(...shellPrograms(text, lineOf(e)));
  };
  /** One program with its arguments: records it, and the script of `sh -c`. */
  const program = (name: string | undefined, args: readonly ts.Expression[], at: ts.Node): void => {
    if (name === undefined) return;
    add(name, at);
    if (SHELLS.has(basename(name))) {
      const c = args.findIndex((a) => literal(a) === '-c');
      if (c >= 0) script(args[c + 1]);
      return;
    }
    const w = wrappedCommand(basename(name), args.map(literal));
    if (w !== undefined && args[w]) program(literal(args[w]), args.slice(w + 1), at);
  };
  const argv = (arr: ts.ArrayLiteralExpression): void => {
    const [first, ...rest] = arr.elements;
    if (first && !ts.isSpreadElement(first)) program(literal(first), rest, arr);
  };
  const calleeName = (e: ts.Expression): { name: string; method: boolean; ns?: string } | undefined => {
    if (ts.isIdentifier(e)) return { name: e.text, method: false };
    if (ts.isPropertyAccessExpression(e)) {
      const ns = ts.isIdentifier(e.expression) ? e.expression.text : undefined;
      return { name: e.name.text, method: true, ...(ns ? { ns } : {}) };
    }
    if (ts.isParenthesizedExpression(e)) {
      // (o.runner ?? defaultRunner)(argv, ...)
      return /runner/i.test(e.getText(sf)) ? { name: 'runner', method: true } : undefined;
    }
    return undefined;
  };

  // Pass 2: calls and embedded scripts.
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n)) {
      const c = calleeName(n.expression);
      const args = n.arguments;
      if (c) {
        const cpFn = !c.method ? cp.get(c.name) : c.ns && cpNamespaces.has(c.ns) ? c.name : undefined;
        if (cpFn && CP_PROGRAM.has(cpFn)) {
          const rest = args[1] && ts.isArrayLiteralExpression(args[1]) ? args[1].elements.filter((x): x is ts.Expression => !ts.isSpreadElement(x)) : [];
          program(literal(args[0]), rest, n);
        } else if (cpFn && CP_SHELL.has(cpFn)) {
          script(args[0]);
        } else if ((!c.method && runners.has(c.name)) || (c.method && isArgvMethod(c.name))) {
          const arr = args.find(ts.isArrayLiteralExpression);
          // run('qemu-img', [...]) names the program first, like execFile; run(['qemu-img', ...]) is an argv.
          if (args[0] && ts.isStringLiteralLike(args[0])) program(args[0].text, arr ? arr.elements.filter((x): x is ts.Expression => !ts.isSpreadElement(x)) : [], n);
          else if (arr) argv(arr);
        } else if (c.name === 'resolveTool') {
          const p = literal(args[0]);
          if (p !== undefined) add(p, n);
        }
        const body = SHELL_BODY_ARGS[c.name];
        if (body !== undefined && !scriptText(args[body])?.startsWith('#!')) script(args[body]);
      }
    }
    if (ts.isStringLiteralLike(n) || ts.isTemplateExpression(n)) {
      const text = scriptText(n);
      const shebang = text?.match(/^#!\s*(\S+)(?:[ \t]+(\S+))?/);
      if (text && shebang) {
        const interp = basename(shebang[1]!) === 'env' && shebang[2] ? shebang[2] : shebang[1]!;
        add(interp, n);
        if (SHELLS.has(basename(interp))) found.push(...shellPrograms(text.slice(text.indexOf('\n') + 1), lineOf(n) + 1));
      }
      return;
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}
