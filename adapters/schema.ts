/**
 * Configuration schemas as data. An adapter declares its parameters once, with this small
 * vocabulary; the TypeScript type of the parsed configuration is derived from the
 * declaration (`SchemaType<typeof schema>`), and parsing validates, applies defaults and
 * freezes in one pass, returning every problem with its path (`quotas[2].validDuration`).
 * No I/O happens here: connecting belongs in an adapter's build.
 */
import { Duration } from '../attributes';

/** One problem in a configuration: where (a path such as `quotas[0].maxAmount`) and what. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** What parsing yields: the value (defaults applied, frozen) when there is no problem. */
export type ParseOutcome<T> = { ok: true; value: T } | { ok: false; problems: ConfigProblem[] };

/** A schema of values of type T. */
export interface Schema<T> {
  /** How the expected value is described in messages: `a string`, `a duration such as "10s"`. */
  readonly description: string;
  /** Default applied when the field is absent; undefined when the field is required or optional. */
  readonly defaultValue?: T;
  /** True when an absent field is accepted (yielding the default or undefined). */
  readonly optional: boolean;
  /** Parses `input` found at `path`, adding problems; returns the value (meaningless when problems were added). */
  parse(input: unknown, path: string, problems: ConfigProblem[]): T;
  /** A copy that may be absent, yielding `value` then. */
  default(value: T): Schema<T>;
  /** A copy that may be absent, yielding undefined then. */
  optionalField(): Schema<T | undefined>;
}

/** The TypeScript type a schema parses to. */
export type SchemaType<S> = S extends Schema<infer T> ? T : never;

type Fields = Record<string, Schema<unknown>>;
type ObjectType<F extends Fields> = { readonly [K in keyof F]: SchemaType<F[K]> };

function make<T>(
  description: string,
  parse: Schema<T>['parse'],
  optional = false,
  defaultValue?: T,
): Schema<T> {
  return Object.freeze({
    description,
    optional,
    defaultValue,
    parse,
    default(value: T): Schema<T> {
      return make(description, parse, true, value);
    },
    optionalField(): Schema<T | undefined> {
      return make<T | undefined>(description, parse, true, undefined);
    },
  });
}

function got(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'string') return JSON.stringify(input);
  return String(input);
}

function problem(problems: ConfigProblem[], path: string, message: string): void {
  problems.push({ path, message });
}

/** `a string` → `strings`, `an integer` → `integers`, for `a list of …`; other descriptions as they are. */
function plural(description: string): string {
  const m = /^an? (\w+)(.*)$/.exec(description);
  return m === null ? description : `${m[1]}s${m[2]}`;
}

/** Joins a path and a field name: `quotas[0]` + `maxAmount`. */
export function joinPath(path: string, field: string | number): string {
  if (typeof field === 'number') return `${path}[${field}]`;
  return path === '' ? field : `${path}.${field}`;
}

export const s = {
  string(): Schema<string> {
    return make('a string', (input, path, problems) => {
      if (typeof input !== 'string') problem(problems, path, `must be a string, got ${got(input)}`);
      return input as string;
    });
  },

  boolean(): Schema<boolean> {
    return make('true or false', (input, path, problems) => {
      if (typeof input !== 'boolean') problem(problems, path, `must be true or false, got ${got(input)}`);
      return input as boolean;
    });
  },

  /** An integer, optionally bounded; accepts a string of digits too (YAML writers quote big numbers). */
  integer(bounds: { min?: number; max?: number } = {}): Schema<number> {
    const { min, max } = bounds;
    return make('an integer', (input, path, problems) => {
      const value = typeof input === 'string' && /^-?\d+$/.test(input) ? Number(input) : input;
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        problem(problems, path, `must be an integer, got ${got(input)}`);
        return 0;
      }
      if (min !== undefined && value < min) problem(problems, path, `must be >= ${min}, got ${value}`);
      if (max !== undefined && value > max) problem(problems, path, `must be <= ${max}, got ${value}`);
      return value;
    });
  },

  /** A duration in Go form (`10s`, `1.5m`, `100ms`), as milliseconds; `positive` refuses 0. */
  duration(bounds: { positive?: boolean } = {}): Schema<number> {
    return make('a duration such as "10s" or "100ms"', (input, path, problems) => {
      const parsed = typeof input === 'string' ? Duration.parse(input) : undefined;
      if (parsed === undefined) {
        problem(problems, path, `must be a duration such as "10s" or "100ms", got ${got(input)}`);
        return 0;
      }
      const ms = Number(parsed.toNanos()) / 1e6;
      if (ms < 0 || (bounds.positive === true && ms === 0)) {
        problem(
          problems,
          path,
          `must be ${bounds.positive === true ? '> 0' : '>= 0'}, got ${input as string}`,
        );
      }
      return ms;
    });
  },

  /** One of the listed strings. */
  enumeration<const V extends string>(values: readonly V[]): Schema<V> {
    const list = values.join(', ');
    return make(`one of ${list}`, (input, path, problems) => {
      if (typeof input !== 'string' || !(values as readonly string[]).includes(input)) {
        problem(problems, path, `must be one of ${list}, got ${got(input)}`);
      }
      return input as V;
    });
  },

  list<T>(item: Schema<T>, bounds: { minLength?: number } = {}): Schema<readonly T[]> {
    const described = `a list of ${plural(item.description)}`;
    return make(described, (input, path, problems) => {
      if (!Array.isArray(input)) {
        problem(problems, path, `must be ${described}, got ${got(input)}`);
        return [];
      }
      if (bounds.minLength !== undefined && input.length < bounds.minLength) {
        problem(problems, path, `must have at least ${bounds.minLength} entries, got ${input.length}`);
      }
      return Object.freeze(input.map((element, i) => item.parse(element, joinPath(path, i), problems)));
    });
  },

  /** A mapping from any string key to values of one schema. */
  record<T>(value: Schema<T>): Schema<Readonly<Record<string, T>>> {
    return make(`a mapping of names to ${value.description}`, (input, path, problems) => {
      if (input === null || typeof input !== 'object' || Array.isArray(input)) {
        problem(problems, path, `must be a mapping of names to ${value.description}, got ${got(input)}`);
        return {};
      }
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(input)) out[k] = value.parse(v, joinPath(path, k), problems);
      return Object.freeze(out);
    });
  },

  /**
   * A mapping with known fields. Unknown fields are problems (a typo must not silently
   * fall back to a default); `aliases` maps other spellings (Mixer's snake_case) to fields.
   */
  object<F extends Fields>(
    fields: F,
    options: { aliases?: Record<string, keyof F & string> } = {},
  ): Schema<ObjectType<F>> {
    const names = Object.keys(fields);
    return make('a mapping', (input, path, problems) => {
      const mapping = input === undefined || input === null ? {} : input;
      if (typeof mapping !== 'object' || Array.isArray(mapping)) {
        problem(problems, path, `must be a mapping, got ${got(mapping)}`);
        return {} as ObjectType<F>;
      }
      const given: Record<string, unknown> = {};
      // The key as written, per field: problems name the spelling the user wrote.
      const written: Record<string, string> = {};
      for (const [key, value] of Object.entries(mapping as Record<string, unknown>)) {
        const field = key in fields ? key : options.aliases?.[key];
        if (field === undefined) {
          problem(
            problems,
            joinPath(path, key),
            names.length === 0
              ? 'is not a known field: this takes no parameters'
              : `is not a known field; known fields: ${names.join(', ')}`,
          );
          continue;
        }
        if (field in written) {
          problem(
            problems,
            joinPath(path, key),
            `sets ${field} a second time (as ${written[field]} and ${key}); keep one`,
          );
          continue;
        }
        written[field] = key;
        given[field] = value;
      }
      const out: Record<string, unknown> = {};
      for (const [name, schema] of Object.entries(fields)) {
        const value = given[name];
        if (value === undefined || value === null) {
          if (!schema.optional)
            problem(problems, joinPath(path, name), `is required: give ${schema.description}`);
          else if (schema.defaultValue !== undefined) out[name] = schema.defaultValue;
          continue;
        }
        out[name] = schema.parse(value, joinPath(path, written[name] ?? name), problems);
      }
      return Object.freeze(out) as ObjectType<F>;
    });
  },
};

/** Parses a whole configuration with a schema: every problem, or the frozen value. */
export function parseWithSchema<T>(schema: Schema<T>, input: unknown, path = ''): ParseOutcome<T> {
  const problems: ConfigProblem[] = [];
  const value = schema.parse(input, path, problems);
  return problems.length === 0 ? { ok: true, value } : { ok: false, problems };
}
