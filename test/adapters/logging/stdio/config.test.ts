import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseWithSchema, type ConfigProblem } from '../../../../adapters';
import { DEFAULT_SEVERITY_LEVELS, STDIO, STDIO_CONFIG } from '../../../../adapters/logging/stdio';
import { stdioConfig } from './support';

/** A configuration resource, as far as these tests read it. */
interface Resource {
  readonly kind: string;
  readonly spec: {
    readonly compiledAdapter?: string;
    readonly compiledTemplate?: string;
    readonly params?: Record<string, unknown>;
  };
}

/** Every problem a configuration has: the schema's, else validate's, as the configuration store finds them. */
function problemsOf(params: Record<string, unknown>): ConfigProblem[] {
  const outcome = parseWithSchema(STDIO_CONFIG, params);
  if (!outcome.ok) return outcome.problems;
  return STDIO.validate!(outcome.value);
}

describe('adapters/logging/stdio: configuration', () => {
  it('is the stdio adapter for logentry and metric', () => {
    assert.equal(STDIO.name, 'stdio');
    assert.deepEqual(STDIO.templates, ['logentry', 'metric']);
  });

  it("has Mixer's defaults", () => {
    assert.deepEqual(stdioConfig({}), {
      logStream: 'STDOUT',
      severityLevels: DEFAULT_SEVERITY_LEVELS,
      metricLevel: 'INFO',
      outputAsJson: true,
      outputLevel: 'INFO',
      maxMegabytesBeforeRotation: 100,
      maxDaysBeforeRotation: 30,
      maxRotatedFiles: 1000,
    });
    assert.deepEqual(Object.keys(DEFAULT_SEVERITY_LEVELS).length, 14);
    assert.deepEqual(problemsOf({}), []);
  });

  it("accepts Mixer's snake_case names and enumeration numbers, as Istio's samples write them", () => {
    const config = stdioConfig({
      severity_levels: { warning: 1, Default: 'ERROR' },
      outputAsJson: true,
      log_stream: 3,
      output_path: '/var/log/switchboard/access.log',
      metric_level: 2,
      output_level: 'WARNING',
      max_megabytes_before_rotation: 5,
      max_days_before_rotation: 0,
      max_rotated_files: 3,
    });
    assert.deepEqual(config, {
      logStream: 'ROTATED_FILE',
      severityLevels: { warning: 'WARNING', Default: 'ERROR' },
      metricLevel: 'ERROR',
      outputAsJson: true,
      outputLevel: 'WARNING',
      outputPath: '/var/log/switchboard/access.log',
      maxMegabytesBeforeRotation: 5,
      maxDaysBeforeRotation: 0,
      maxRotatedFiles: 3,
    });
    assert.equal(stdioConfig({ maxBackupsBeforeRemoval: 7 }).maxRotatedFiles, 7);
  });

  it('requires outputPath for FILE', () => {
    assert.deepEqual(problemsOf({ logStream: 'FILE' }), [
      {
        path: 'outputPath',
        message:
          'is required when logStream is FILE: give the file to append to, such as /var/log/switchboard/access.log',
      },
    ]);
  });

  it('requires a non-empty outputPath for ROTATED_FILE', () => {
    assert.deepEqual(problemsOf({ logStream: 'ROTATED_FILE', outputPath: '' }), [
      {
        path: 'outputPath',
        message:
          'is required when logStream is ROTATED_FILE: give the file to append to, such as /var/log/switchboard/access.log',
      },
    ]);
  });

  it('refuses an outputPath that names a folder', () => {
    assert.deepEqual(problemsOf({ logStream: 'FILE', outputPath: '/var/log/' }), [
      {
        path: 'outputPath',
        message: 'names a folder ("/var/log/"): give a file in it, such as /var/log/access.log',
      },
    ]);
  });

  it('refuses an outputPath with a NUL character', () => {
    assert.deepEqual(problemsOf({ logStream: 'FILE', outputPath: '/tmp/a\0b' }), [
      { path: 'outputPath', message: 'contains a NUL character: give a plain file path' },
    ]);
  });

  it('refuses an outputPath with STDOUT or STDERR, as Mixer did', () => {
    assert.deepEqual(problemsOf({ outputPath: '/tmp/x.log' }), [
      {
        path: 'outputPath',
        message:
          'applies only when logStream is FILE or ROTATED_FILE, and logStream is STDOUT: remove outputPath, or set logStream to FILE',
      },
    ]);
    assert.equal(problemsOf({ logStream: 'STDERR', outputPath: '/tmp/x.log' }).length, 1);
  });

  it('refuses unknown severity levels, streams and fields, each with its path', () => {
    assert.deepEqual(
      problemsOf({
        logStream: 'FILES',
        severityLevels: { warning: 'LOUD', info: 3 },
        metricLevel: 'DEBUG',
        outputLevel: true,
        outputAsJson: 'yes',
        outputFormat: 'json',
      }),
      [
        {
          path: 'outputFormat',
          message:
            'is not a known field; known fields: logStream, severityLevels, metricLevel, outputAsJson, outputLevel, ' +
            'outputPath, maxMegabytesBeforeRotation, maxDaysBeforeRotation, maxRotatedFiles',
        },
        {
          path: 'logStream',
          message: 'must be one of STDOUT, STDERR, FILE, ROTATED_FILE (or its number, 0 to 3), got "FILES"',
        },
        {
          path: 'severityLevels.warning',
          message: 'must be one of INFO, WARNING, ERROR (or its number, 0 to 2), got "LOUD"',
        },
        {
          path: 'severityLevels.info',
          message: 'must be one of INFO, WARNING, ERROR (or its number, 0 to 2), got 3',
        },
        {
          path: 'metricLevel',
          message: 'must be one of INFO, WARNING, ERROR (or its number, 0 to 2), got "DEBUG"',
        },
        { path: 'outputAsJson', message: 'must be true or false, got "yes"' },
        {
          path: 'outputLevel',
          message: 'must be one of INFO, WARNING, ERROR (or its number, 0 to 2), got true',
        },
      ],
    );
  });

  it('refuses negative rotation numbers', () => {
    assert.deepEqual(
      problemsOf({
        logStream: 'ROTATED_FILE',
        outputPath: '/tmp/x.log',
        maxMegabytesBeforeRotation: -1,
        maxDaysBeforeRotation: -2,
        maxRotatedFiles: 1.5,
      }),
      [
        { path: 'maxMegabytesBeforeRotation', message: 'must be >= 0, got -1' },
        { path: 'maxDaysBeforeRotation', message: 'must be >= 0, got -2' },
        { path: 'maxRotatedFiles', message: 'must be an integer, got 1.5' },
      ],
    );
  });

  it("accepts the README's examples", () => {
    // Tests run from dist/test/…; the README lives beside the sources.
    const readme = readFileSync(
      path.resolve(__dirname, '../../../../../adapters/logging/stdio/README.md'),
      'utf8',
    );
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.equal(blocks.length, 2);
    const documents = parseAllDocuments(blocks[0]!).map((d) => d.toJS() as Resource);
    const handlers = documents.filter((d) => d.kind === 'handler' && d.spec.compiledAdapter === 'stdio');
    assert.equal(handlers.length, 1);
    assert.deepEqual(problemsOf(handlers[0]!.spec.params ?? {}), []);
    assert.ok(documents.some((d) => d.kind === 'instance' && d.spec.compiledTemplate === 'logentry'));
    assert.ok(documents.some((d) => d.kind === 'rule'));
    // The second is a handler's params alone.
    const fragment = parseAllDocuments(blocks[1]!)[0]!.toJS() as Pick<Resource['spec'], 'params'>;
    assert.deepEqual(problemsOf(fragment.params!), []);
  });
});
