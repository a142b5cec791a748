// Where things are in a JSON text, for input errors that name the line and what was expected
// (doctor-cli.md, exit 2). Node's JSON.parse says "at position N" for only some errors (Node 20:
// not for `Unexpected token '}', "..." is not valid JSON`, nor at the end of the input), so after
// JSON.parse has failed, the text is scanned again by this recogniser of RFC 8259, which stops at
// the first error. It is iterative (an explicit stack), so deep nesting cannot overflow the call
// stack. JSON.parse stays the judge of what is JSON; this only says where and why.

export interface JsonPlace {
  /** 0-based UTF-16 offset, as JSON.parse's positions. */
  readonly offset: number;
  /** 1-based. */
  readonly line: number;
  /** 1-based, in UTF-16 code units. */
  readonly column: number;
}

export interface JsonSyntaxError extends JsonPlace {
  /** What stands there: `"}"`, `the end of the input`... */
  readonly found: string;
  readonly expected: string;
}

export function jsonPlace(text: string, offset: number): JsonPlace {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { offset, line, column: offset - lineStart + 1 };
}

/** "line 3, column 17", or "character 1234" when the text is one line (as `nft -j` prints it). */
export function jsonPlaceText(text: string, place: JsonPlace): string {
  return text.trimEnd().includes("\n") ? `line ${place.line}, column ${place.column}` : `character ${place.column}`;
}

/** The first syntax error in `text`, or null when it is valid JSON. */
export function findJsonSyntaxError(text: string): JsonSyntaxError | null {
  const r = scan(text, null);
  return r.error;
}

/**
 * The offsets of the items of the array held by `member` in the top-level object
 * (`{"nftables": [ ... ]}`), to say where a valid but unusable item stands.
 */
export function memberItemOffsets(text: string, member: string): number[] {
  return scan(text, member).items;
}

class Stop {
  constructor(readonly offset: number, readonly expected: string) {}
}

const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function scan(text: string, member: string | null): { error: JsonSyntaxError | null; items: number[] } {
  const stack: ("{" | "[")[] = [];
  const keys: (string | null)[] = [];
  let items: number[] = [];
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const expect = (c: string, expected: string) => {
    if (text[i] !== c) throw new Stop(i, expected);
    i++;
  };
  const string = (): string => {
    const start = i;
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) throw new Stop(i, 'a closing "');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) throw new Stop(i, "a character or an escape (control characters must be escaped in strings)");
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          const hex = /^[0-9a-fA-F]{0,4}/.exec(text.slice(i + 2, i + 6))![0].length;
          if (hex < 4) throw new Stop(i + 2 + hex, "four hex digits after \\u");
          i += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) throw new Stop(i + 1, 'an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX');
        i += 2;
        continue;
      }
      i++;
    }
    i++;
    return text.slice(start + 1, i - 1);
  };
  const key = () => {
    if (text[i] !== '"') throw new Stop(i, "a property name in double quotes");
    keys[stack.length - 1] = string();
    ws();
    expect(":", '":" after the property name');
  };
  try {
    let wantValue = true;
    for (;;) {
      ws();
      if (wantValue) {
        if (stack.length === 2 && stack[0] === "{" && stack[1] === "[" && member !== null && keys[0] === member) items.push(i);
        const c = text[i];
        if (c === "{" || c === "[") {
          stack.push(c);
          i++;
          if (stack.length === 2 && c === "[" && stack[0] === "{" && keys[0] === member) items = []; // a repeated member: JSON.parse keeps the last
          ws();
          if (text[i] === (c === "{" ? "}" : "]")) {
            i++;
            stack.pop();
            wantValue = false;
          } else if (c === "{") key();
          continue;
        }
        if (c === '"') string();
        else if (c === "t" || c === "f" || c === "n") {
          const word = c === "t" ? "true" : c === "f" ? "false" : "null";
          for (let k = 0; k < word.length; k++, i++) if (text[i] !== word[k]) throw new Stop(i, `${word} (or another JSON value)`);
        } else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
          number.lastIndex = i;
          const m = number.exec(text);
          if (!m) throw new Stop(i + 1, "a digit");
          i += m[0].length;
          // `1.` and `1e`: the optional parts above did not match, so the digit they need is missing.
          const hasExponent = /[eE]/.test(m[0]);
          if (text[i] === "." && !m[0].includes(".") && !hasExponent) throw new Stop(i + 1, "a digit after the decimal point");
          if ((text[i] === "e" || text[i] === "E") && !hasExponent) throw new Stop(text[i + 1] === "+" || text[i + 1] === "-" ? i + 2 : i + 1, "a digit in the exponent");
        } else throw new Stop(i, "a JSON value (object, array, string, number, true, false or null)");
        wantValue = false;
        continue;
      }
      const top = stack.at(-1);
      if (top === undefined) {
        if (i < text.length) throw new Stop(i, "the end of the input after the JSON value");
        return { error: null, items };
      }
      if (text[i] === ",") {
        i++;
        ws();
        if (top === "{") key();
        wantValue = true;
        continue;
      }
      const close = top === "{" ? "}" : "]";
      expect(close, top === "{" ? '"," or "}" after an object member' : '"," or "]" after an array item');
      stack.pop();
    }
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    const offset = Math.min(e.offset, text.length);
    const ch = text[offset];
    const found = ch === undefined ? "the end of the input" : /\s/.test(ch) && ch !== " " ? JSON.stringify(ch) : `"${ch}"`;
    return { error: { ...jsonPlace(text, offset), found, expected: e.expected }, items };
  }
}
