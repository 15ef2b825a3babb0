/**
 * The denier's parameters, as Mixer's `adapter.denier.config.Params`: the status to answer,
 * and how long and how often a proxy may reuse that answer. Defaults are Mixer's (its
 * adapter inventory): FAILED_PRECONDITION with no message, 5s, 1000 uses.
 */
import { StatusCode } from '../../../templates';
import { s, type ConfigProblem, type Schema, type SchemaType } from '../../schema';

const CODE_NAMES = Object.keys(StatusCode) as (keyof typeof StatusCode)[];
const MAX_CODE = Math.max(...Object.values(StatusCode));
const CODE_DESCRIPTION = `a google.rpc code: a number 0 to ${MAX_CODE} or a name such as PERMISSION_DENIED`;

/**
 * A google.rpc code, given as its number (as Mixer's YAML did: `code: 7`) or its name
 * (`code: PERMISSION_DENIED`). The schema vocabulary has no union, so this one is written
 * out against the Schema contract.
 */
function statusCode(optional = false, defaultValue?: number): Schema<number> {
  const parse = (input: unknown, path: string, problems: ConfigProblem[]): number => {
    if (typeof input === 'string' && (CODE_NAMES as string[]).includes(input)) {
      return StatusCode[input as keyof typeof StatusCode];
    }
    const value = typeof input === 'string' && /^\d+$/.test(input) ? Number(input) : input;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_CODE) return value;
    const shown = typeof input === 'string' ? JSON.stringify(input) : String(input);
    problems.push({ path, message: `must be ${CODE_DESCRIPTION}, got ${shown}` });
    return 0;
  };
  return Object.freeze({
    description: CODE_DESCRIPTION,
    optional,
    defaultValue,
    parse,
    default: (value: number): Schema<number> => statusCode(true, value),
    optionalField: (): Schema<number | undefined> => statusCode(true) as Schema<number | undefined>,
  });
}

/** Mixer's default status: FAILED_PRECONDITION, no message. */
export const DEFAULT_DENIER_STATUS = Object.freeze({ code: StatusCode.FAILED_PRECONDITION, message: '' });

export const DENIER_CONFIG = s.object(
  {
    /** The status every check answers; each field defaults on its own, as Mixer merged params over its defaults. */
    status: s
      .object({
        code: statusCode().default(DEFAULT_DENIER_STATUS.code),
        message: s.string().default(DEFAULT_DENIER_STATUS.message),
      })
      .default(DEFAULT_DENIER_STATUS),
    /** How long a proxy may reuse the denial, in milliseconds. Default 5000 (Mixer's 5s). */
    validDuration: s.duration().default(5000),
    /** How many requests a proxy may answer with the denial. Default 1000 (Mixer's). */
    validUseCount: s.integer({ min: 0, max: 2 ** 31 - 1 }).default(1000),
  },
  { aliases: { valid_duration: 'validDuration', valid_use_count: 'validUseCount' } },
);

export type DenierConfig = SchemaType<typeof DENIER_CONFIG>;
