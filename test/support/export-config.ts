/**
 * The configuration the export adapters' tests and benchmarks run: one handler `audit` of
 * the adapter, one logentry instance `auditlog` with the given variables, and a rule sending
 * every Report's instance to the handler.
 */

/**
 * @param adapter `kafka` or `elasticsearch`
 * @param params the handler's params as YAML lines, unindented
 * @param variables variable name → expression
 * @param timestamp the instance's timestamp expression
 */
export function exportConfigYaml(
  adapter: string,
  params: string,
  variables: Readonly<Record<string, string>>,
  timestamp = 'request.time | context.time',
): string {
  const indent = (text: string, spaces: number): string =>
    text
      .trim()
      .split('\n')
      .map((line) => ' '.repeat(spaces) + line)
      .join('\n');
  const variableLines = Object.entries(variables)
    .map(([name, expression]) => `${name}: '${expression.replaceAll("'", "''")}'`)
    .join('\n');
  return `apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: { name: audit, namespace: istio-system }
spec:
  compiledAdapter: ${adapter}
  params:
${indent(params, 4)}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: { name: auditlog, namespace: istio-system }
spec:
  compiledTemplate: logentry
  params:
    severity: '"info"'
    timestamp: ${timestamp}
    variables:
${indent(variableLines, 6)}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: { name: audit, namespace: istio-system }
spec:
  actions:
    - handler: audit
      instances: [auditlog]
`;
}
