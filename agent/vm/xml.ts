// XML as a tree: parsed once, edited element by element, written back.
// Whatever the agent does not know (other namespaces' metadata, comments,
// CDATA, whitespace) is kept as it came, so an engine's XML round-trips.
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export function esc(value: string | number | boolean): string {
  return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Input that is not well-formed XML (or uses what domain XML never needs: a DOCTYPE). */
export class XmlSyntaxError extends Error {
  override readonly name = 'XmlSyntaxError';
  constructor(message: string, readonly line?: number, readonly col?: number) { super(message); }
}

export type XmlLeaf = { kind: 'text' | 'cdata' | 'comment'; value: string };
export type XmlChild = XmlElement | XmlLeaf;

export class XmlElement {
  readonly kind = 'element';
  parent: XmlElement | undefined;
  readonly children: XmlChild[] = [];

  constructor(public name: string, readonly attrs: Record<string, string> = {}, children: (XmlChild | string)[] = []) {
    for (const c of children) this.append(typeof c === 'string' ? { kind: 'text', value: c } : c);
  }

  get prefix(): string { const i = this.name.indexOf(':'); return i < 0 ? '' : this.name.slice(0, i); }
  get localName(): string { return this.name.slice(this.name.indexOf(':') + 1); }

  /** The namespace of this element's prefix, from the nearest declaration on it or an ancestor. */
  get namespaceURI(): string | undefined {
    const decl = this.prefix ? `xmlns:${this.prefix}` : 'xmlns';
    for (let e: XmlElement | undefined = this; e; e = e.parent) {
      if (decl in e.attrs) return e.attrs[decl] || undefined;
    }
    return undefined;
  }

  attr(name: string): string | undefined { return this.attrs[name]; }
  setAttr(name: string, value: string): this { this.attrs[name] = value; return this; }

  /** Child elements, all or those with this qualified name. */
  elements(name?: string): XmlElement[] {
    return this.children.filter((c): c is XmlElement => c.kind === 'element' && (name === undefined || c.name === name));
  }

  element(name: string): XmlElement | undefined { return this.elements(name)[0]; }

  /** Child elements by namespace and local name, whatever prefix they use. */
  elementsNS(ns: string, localName: string): XmlElement[] {
    return this.elements().filter((c) => c.localName === localName && c.namespaceURI === ns);
  }

  /** The text directly inside (text and CDATA children). */
  text(): string {
    return this.children.map((c) => (c.kind === 'text' || c.kind === 'cdata' ? c.value : '')).join('');
  }

  setText(value: string): this {
    for (const c of this.children) if (c.kind === 'element') c.parent = undefined;
    this.children.splice(0, this.children.length, { kind: 'text', value });
    return this;
  }

  append<T extends XmlChild>(child: T): T { return this.insertAt(this.children.length, child); }

  insertAfter<T extends XmlChild>(ref: XmlChild, child: T): T { return this.insertAt(this.indexOf(ref) + 1, child); }

  remove(child: XmlChild): void {
    this.children.splice(this.indexOf(child), 1);
    if (child.kind === 'element') child.parent = undefined;
  }

  replace(old: XmlChild, child: XmlChild): void {
    this.insertAfter(old, child);
    this.remove(old);
  }

  private indexOf(child: XmlChild): number {
    const i = this.children.indexOf(child);
    if (i < 0) throw new Error(`<${child.kind === 'element' ? child.name : child.kind}> is not a child of <${this.name}>`);
    return i;
  }

  private insertAt<T extends XmlChild>(index: number, child: T): T {
    if (child.kind === 'element') {
      child.parent?.remove(child);
      child.parent = this;
    }
    this.children.splice(index, 0, child);
    return child;
  }
}

// processEntities off: entities are decoded here, so an undefined one is an error, not text.
const parser = new XMLParser({
  preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseTagValue: false,
  parseAttributeValue: false, trimValues: false, processEntities: false, ignoreDeclaration: true,
  ignorePiTags: true, commentPropName: '#comment', cdataPropName: '#cdata',
});

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&<\s]*)(;?)/g, (m, ref: string, semi: string) => {
    const code = /^#x[0-9a-f]+$/i.test(ref) ? parseInt(ref.slice(2), 16) : /^#[0-9]+$/.test(ref) ? Number(ref.slice(1)) : undefined;
    if (semi && code !== undefined && code <= 0x10ffff) return String.fromCodePoint(code);
    if (semi && NAMED[ref] !== undefined) return NAMED[ref]!;
    throw new XmlSyntaxError(semi ? `undefined entity ${m}` : `a bare '&' (write &amp;) near '${m}'`);
  });
}

type Ordered = Record<string, unknown>;

function leafText(node: Ordered, key: string): string {
  return ((node[key] as Ordered[])[0]?.['#text'] as string | undefined) ?? '';
}

function build(nodes: Ordered[], into: XmlElement): void {
  for (const node of nodes) {
    if ('#text' in node) into.append({ kind: 'text', value: decode(String(node['#text'])) });
    else if ('#cdata' in node) into.append({ kind: 'cdata', value: leafText(node, '#cdata') });
    else if ('#comment' in node) into.append({ kind: 'comment', value: leafText(node, '#comment') });
    else into.append(toElement(node));
  }
}

function toElement(node: Ordered): XmlElement {
  const name = Object.keys(node).find((k) => k !== ':@')!;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries((node[':@'] ?? {}) as Record<string, unknown>)) attrs[k] = decode(String(v));
  const el = new XmlElement(name, attrs);
  build(node[name] as Ordered[], el);
  return el;
}

/** Parses a document; returns its root element. Throws XmlSyntaxError, with the line where one is known. */
export function parseXml(xml: string): XmlElement {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    const where = [line !== undefined ? `line ${line}` : '', col !== undefined ? `column ${col}` : ''].filter(Boolean).join(', ');
    throw new XmlSyntaxError(where ? `${msg} (${where})` : msg, line, col);
  }
  // Domain XML never has a DOCTYPE; refused rather than silently dropped.
  const rootAt = xml.search(/<[A-Za-z_]/);
  const prolog = rootAt < 0 ? xml : xml.slice(0, rootAt);
  if (/<!DOCTYPE/i.test(prolog)) throw new XmlSyntaxError('a DOCTYPE is not allowed');
  const top = (parser.parse(xml) as Ordered[]).filter((n) => !('#comment' in n) && !('#text' in n && String(n['#text']).trim() === ''));
  const roots = top.filter((n) => !('#text' in n));
  const trailing = xml.slice(xml.lastIndexOf('>') + 1).trim() !== ''; // the parser drops text after the root
  if (roots.length !== 1 || top.length !== 1 || trailing) throw new XmlSyntaxError(roots.length === 0 ? 'no root element' : 'content after the root element');
  return toElement(roots[0]!);
}

function escText(s: string): string { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }
function escAttr(s: string): string { return escText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;'); }

export function serializeXml(node: XmlChild): string {
  switch (node.kind) {
    case 'text': return escText(node.value);
    case 'cdata': return `<![CDATA[${node.value}]]>`;
    case 'comment': return `<!--${node.value}-->`;
    default: {
      const attrs = Object.entries(node.attrs).map(([k, v]) => ` ${k}="${escAttr(v)}"`).join('');
      if (node.children.length === 0) return `<${node.name}${attrs}/>`;
      return `<${node.name}${attrs}>${node.children.map(serializeXml).join('')}</${node.name}>`;
    }
  }
}
