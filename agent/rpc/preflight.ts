// A look at a large frame before JSON.parse, for what parsing would make
// expensive and the dispatcher refuses anyway. Measured with the agent's
// node flags: 8 MiB of nested arrays takes JSON.parse 5.7 s of event loop
// and ~280 MB of heap (then it is refused: not a request object); a batch of
// 180,000 requests 0.5 s (then refused: over the batch limit). This scan
// stops at the 65th level or the 101st batch item, and skips string
// contents with indexOf, so a legitimate large frame (a domain XML in a
// string) costs it a fraction of its parse.
//
// Only frames above PREFLIGHT_MIN_CHARS are looked at: below it parsing costs
// little however the frame nests, and such frames keep the full diagnosis
// (the id, the field at fault).

/** Frames shorter than this (in UTF-16 units) are parsed without a look first. */
export const PREFLIGHT_MIN_CHARS = 64 * 1024;

export interface PreflightLimits {
  maxDepth: number;
  maxBatch: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;
const COMMA = 0x2c;

/** Why the frame is refused unparsed, or undefined to parse it (malformed text is left for JSON.parse to report). */
export function preflight(text: string, limits: PreflightLimits): string | undefined {
  const topIsArray = text.trimStart().charCodeAt(0) === OPEN_ARRAY;
  let depth = 0;
  let topCommas = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      if (end < 0) return undefined;
      i = end;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > limits.maxDepth) return `nested deeper than ${limits.maxDepth}`;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    } else if (c === COMMA && depth === 1 && topIsArray && ++topCommas >= limits.maxBatch) {
      return `batch larger than ${limits.maxBatch}`;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opened at `open`, or -1. */
function closingQuote(text: string, open: number): number {
  let j = open;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) return -1;
    let backslashes = 0;
    for (let k = j - 1; text.charCodeAt(k) === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return j;
  }
}
