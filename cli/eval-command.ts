/**
 * `switchboard eval '<expr>' [--attributes FILE.json]`: compiles one expression
 * against the built-in manifest, evaluates it, and prints one JSON line
 * `{"type": "<VALUE_TYPE>", "value": <value>}`.
 *
 * Exit status: 0 on success; 2 for a syntax or type error in the expression and for
 * bad usage or a bad attributes file; 1 for an evaluation error (an absent
 * attribute, a failed conversion). Errors are one line on stderr.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  AttributeBag,
  STANDARD_MANIFEST,
  bagFromJson,
  parseJson,
  valueToJson,
  valueTypeName,
  type Bag,
} from '../attributes';
import { EvaluationError, ExpressionError, compileExpression } from '../expressions';

export const EVAL_USAGE = "usage: switchboard eval '<expression>' [--attributes FILE.json]";

/** Output streams, replaceable in tests. */
export interface CommandIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
}

const PROCESS_IO: CommandIo = {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
};

/** Runs the command and returns its exit status. */
export async function runEvalCommand(args: readonly string[], io: CommandIo = PROCESS_IO): Promise<number> {
  const fail = (status: number, message: string): number => {
    io.stderr(`switchboard eval: ${message.replace(/\s*\n\s*/g, ' ')}`);
    return status;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { attributes: { type: 'string', short: 'a' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    return fail(2, `${(err as Error).message}; ${EVAL_USAGE}`);
  }
  if (parsed.positionals.length !== 1) {
    return fail(2, `expected exactly one expression, got ${parsed.positionals.length}; ${EVAL_USAGE}`);
  }
  const source = parsed.positionals[0]!;

  let bag: Bag = new AttributeBag();
  const file = parsed.values.attributes;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      return fail(
        2,
        `cannot read attributes file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    try {
      bag = bagFromJson(parseJson(text), STANDARD_MANIFEST);
    } catch (err) {
      return fail(2, `${file}: ${(err as Error).message}`);
    }
  }

  let expression;
  try {
    expression = compileExpression(source, STANDARD_MANIFEST);
  } catch (err) {
    if (err instanceof ExpressionError) return fail(2, `${err.kind} error at ${err.message}`);
    throw err;
  }
  const result = expression.tryEvaluate(bag);
  if (result instanceof EvaluationError) return fail(1, `evaluation error at ${result.message}`);
  io.stdout(
    JSON.stringify({ type: valueTypeName(expression.type), value: valueToJson(result, expression.type) }),
  );
  return 0;
}
