/**
 * The `filter` of Compute Engine list calls, enough of it for the fake: comparisons
 * `field = value`, `field != value`, `field : value` (has; `*` = present), `field eq regex`,
 * `field ne regex`, combined with AND / OR / NOT and parentheses, where a blank between two
 * expressions means AND (`(status = RUNNING) (labels.owner = recogdrive)`). Fields are dotted
 * paths into the resource's JSON (`labels.owner`, `scheduling.provisioningModel`). Values are
 * bare words or double-quoted strings. Anything else is refused, as the API refuses it.
 */

export type Predicate = (resource: Record<string, unknown>) => boolean;

export class FilterSyntaxError extends Error {}

type Token = { kind: 'word' | 'string' | 'op' | 'lparen' | 'rparen'; text: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ kind: c === '(' ? 'lparen' : 'rparen', text: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        value += text[j];
        j++;
      }
      if (j >= text.length) throw new FilterSyntaxError('unterminated string');
      tokens.push({ kind: 'string', text: value });
      i = j + 1;
    } else if (text.startsWith('!=', i)) {
      tokens.push({ kind: 'op', text: '!=' });
      i += 2;
    } else if (c === '=' || c === ':') {
      tokens.push({ kind: 'op', text: c });
      i++;
    } else {
      let j = i;
      while (j < text.length && !/[\s()"=:!]/.test(text[j]!)) j++;
      if (j === i) throw new FilterSyntaxError(`unexpected "${c}"`);
      const word = text.slice(i, j);
      tokens.push(word === 'eq' || word === 'ne' ? { kind: 'op', text: word } : { kind: 'word', text: word });
      i = j;
    }
  }
  return tokens;
}

function valueAt(resource: Record<string, unknown>, path: string): unknown {
  let current: unknown = resource;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function compare(field: string, op: string, value: string): Predicate {
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(field)) throw new FilterSyntaxError(`not a field: ${field}`);
  let regex: RegExp | undefined;
  try {
    regex = op === 'eq' || op === 'ne' ? new RegExp(`^(?:${value})$`) : undefined;
  } catch {
    throw new FilterSyntaxError(`not a regular expression: ${value}`);
  }
  return (resource) => {
    const found = valueAt(resource, field);
    const text = found === undefined || found === null ? undefined : typeof found === 'object' ? JSON.stringify(found) : String(found);
    switch (op) {
      case '=':
        return text === value;
      case '!=':
        return text !== value;
      case ':':
        return value === '*' ? text !== undefined : text !== undefined && text.includes(value);
      case 'eq':
        return text !== undefined && regex!.test(text);
      default:
        return text === undefined || !regex!.test(text);
    }
  };
}

/** Parses a list filter; an empty filter matches everything. Throws FilterSyntaxError. */
export function parseFilter(text: string | undefined): Predicate {
  if (text === undefined || text.trim() === '') return () => true;
  const tokens = tokenize(text);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isWord = (t: Token | undefined, word: string): boolean => t?.kind === 'word' && t.text === word;

  // or := and (OR and)* ; and := unary ((AND)? unary)* ; unary := NOT? primary ; primary := ( or ) | field op value
  const parseOr = (): Predicate => {
    const parts = [parseAnd()];
    while (isWord(peek(), 'OR')) {
      pos++;
      parts.push(parseAnd());
    }
    return parts.length === 1 ? parts[0]! : (r) => parts.some((p) => p(r));
  };
  const parseAnd = (): Predicate => {
    const parts = [parseUnary()];
    for (;;) {
      const next = peek();
      if (next === undefined || next.kind === 'rparen' || isWord(next, 'OR')) break;
      if (isWord(next, 'AND')) pos++;
      parts.push(parseUnary());
    }
    return parts.length === 1 ? parts[0]! : (r) => parts.every((p) => p(r));
  };
  const parseUnary = (): Predicate => {
    if (isWord(peek(), 'NOT')) {
      pos++;
      const inner = parsePrimary();
      return (r) => !inner(r);
    }
    return parsePrimary();
  };
  const parsePrimary = (): Predicate => {
    const token = tokens[pos++];
    if (token === undefined) throw new FilterSyntaxError('expression expected');
    if (token.kind === 'lparen') {
      const inner = parseOr();
      if (tokens[pos++]?.kind !== 'rparen') throw new FilterSyntaxError('")" expected');
      return inner;
    }
    if (token.kind !== 'word') throw new FilterSyntaxError(`field expected, got "${token.text}"`);
    const op = tokens[pos++];
    if (op?.kind !== 'op') throw new FilterSyntaxError(`operator expected after ${token.text}`);
    const value = tokens[pos++];
    if (value === undefined || (value.kind !== 'word' && value.kind !== 'string')) throw new FilterSyntaxError(`value expected after ${token.text} ${op.text}`);
    return compare(token.text, op.text, value.text);
  };

  const predicate = parseOr();
  if (pos !== tokens.length) throw new FilterSyntaxError(`unexpected "${tokens[pos]!.text}"`);
  return predicate;
}
