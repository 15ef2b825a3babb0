/** `switchboard eval '<expr>' [--attributes FILE.json]`. STUB: implementation pending. */
export async function runEvalCommand(_args: readonly string[]): Promise<number> {
  process.stderr.write('switchboard eval: not implemented yet\n');
  return 2;
}
