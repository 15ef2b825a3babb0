/**
 * A large body streamed through the proxy, both ways, with the proxy's memory bounded: the
 * proxy runs as an operator runs it (the compiled CLI, in a child process), and its
 * resident set size is sampled while 1 GiB goes up and 1 GiB comes down, generated on the
 * fly and checksummed on both ends, over HTTP/1.1 and over h2c (the proxy's own HTTP/2 server,
 * whose receive window follows the exchange). SWITCHBOARD_PROXY_BIG_BODY_MIB sets the size
 * (default 1024).
 */
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'switchboard.js');
const BODY_BYTES = Number(process.env['SWITCHBOARD_PROXY_BIG_BODY_MIB'] ?? 1024) * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
/** How much the proxy's RSS may grow over its idle size while the body streams. */
const MAX_GROWTH_BYTES = 96 * 1024 * 1024;

/** Patterns the body cycles through: a lost, doubled or reordered chunk changes the checksum. */
const PATTERNS: readonly Buffer[] = Array.from({ length: 17 }, (_, p) => {
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  for (let i = 0; i < CHUNK_BYTES; i += 4) chunk.writeUInt32LE((p * 2654435761 + i) >>> 0, i);
  return chunk;
});

/** A running CRC-32 of everything passed to it (cheap enough for a gibibyte on each end). */
class Checksum {
  value = 0;
  update(chunk: Buffer): void {
    this.value = crc32(chunk, this.value);
  }
}

/** A stream of `bytes` generated on the fly, checksummed as it is read. */
function generated(bytes: number, checksum: Checksum): Readable {
  let sent = 0;
  let index = 0;
  return new Readable({
    read() {
      if (sent >= bytes) {
        this.push(null);
        return;
      }
      const chunk = PATTERNS[index++ % PATTERNS.length]!.subarray(0, Math.min(CHUNK_BYTES, bytes - sent));
      sent += chunk.length;
      checksum.update(chunk);
      this.push(chunk);
    },
  });
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status);
  if (kb === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb[1]) * 1024;
}

describe('proxy large bodies', function () {
  // Generous: the time of a 1 GiB stream depends on the machine, and nothing here measures it.
  this.timeout(300_000);
  let upstream: http.Server;
  let child: ChildProcess | undefined;
  let dir: string;
  let proxyPort: number;
  const sinkChecksums: number[] = [];
  const sourceChecksums: number[] = [];

  before(async () => {
    upstream = http.createServer((req, res) => {
      if (req.method === 'PUT') {
        const checksum = new Checksum();
        let received = 0;
        req.on('data', (c: Buffer) => {
          received += c.length;
          checksum.update(c);
        });
        req.on('end', () => {
          sinkChecksums.push(checksum.value);
          res.end(String(received));
        });
        return;
      }
      const checksum = new Checksum();
      res.writeHead(200, {
        'content-length': String(BODY_BYTES),
        'content-type': 'application/octet-stream',
      });
      const source = generated(BODY_BYTES, checksum);
      source.pipe(res);
      source.on('end', () => sourceChecksums.push(checksum.value));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamPort = (upstream.address() as net.AddressInfo).port;
    dir = mkdtempSync(path.join(tmpdir(), 'switchboard-big-'));
    const config = path.join(dir, 'proxy.yaml');
    writeFileSync(
      config,
      `listeners: [{name: out, role: outbound, address: 127.0.0.1, port: 0}]
routes: [{cluster: sink, timeout: 0}]
clusters: [{name: sink, endpoints: [{host: 127.0.0.1, port: ${upstreamPort}}]}]
`,
    );
    const proxy = spawn(process.execPath, [CLI, 'proxy', '--config', config, '--workers', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proxy;
    proxyPort = await new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(
        () => reject(new Error(`the proxy did not start within 20 s: ${err}`)),
        20_000,
      );
      proxy.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      proxy.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      proxy.on('exit', (code) => reject(new Error(`the proxy exited with ${code}: ${err}`)));
    });
  });

  after(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `transfer` while sampling the proxy's RSS; returns the largest growth over its size before. */
  async function peakGrowthDuring(transfer: () => Promise<void>): Promise<number> {
    const pid = child!.pid!;
    const before = rssOf(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 20);
    try {
      await transfer();
    } finally {
      clearInterval(sampler);
    }
    return peak - before;
  }

  it(`uploads ${BODY_BYTES / 1024 / 1024} MiB through the proxy with bounded memory`, async () => {
    const checksum = new Checksum();
    let answer = '';
    const growth = await peakGrowthDuring(
      () =>
        new Promise<void>((resolve, reject) => {
          const req = http.request(
            {
              host: '127.0.0.1',
              port: proxyPort,
              method: 'PUT',
              path: '/sink',
              agent: false,
              headers: { 'content-length': String(BODY_BYTES) },
            },
            (res) => {
              res.setEncoding('utf8');
              res.on('data', (c: string) => (answer += c));
              res.on('end', resolve);
            },
          );
          req.on('error', reject);
          generated(BODY_BYTES, checksum).pipe(req);
        }),
    );
    assert.equal(answer, String(BODY_BYTES));
    assert.equal(sinkChecksums.at(-1), checksum.value);
    assert.ok(growth < MAX_GROWTH_BYTES, `the proxy grew by ${Math.round(growth / 1024 / 1024)} MiB`);
  });

  it(`downloads ${BODY_BYTES / 1024 / 1024} MiB through the proxy with bounded memory`, async () => {
    const checksum = new Checksum();
    let received = 0;
    const growth = await peakGrowthDuring(
      () =>
        new Promise<void>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: proxyPort, path: '/source', agent: false }, (res) => {
              res.on('data', (c: Buffer) => {
                received += c.length;
                checksum.update(c);
              });
              res.on('end', resolve);
              res.on('error', reject);
            })
            .on('error', reject);
        }),
    );
    assert.equal(received, BODY_BYTES);
    assert.equal(checksum.value, sourceChecksums.at(-1));
    assert.ok(growth < MAX_GROWTH_BYTES, `the proxy grew by ${Math.round(growth / 1024 / 1024)} MiB`);
  });

  it(`uploads ${BODY_BYTES / 1024 / 1024} MiB over h2c with bounded memory`, async () => {
    const checksum = new Checksum();
    let answer = '';
    const session = http2.connect(`http://127.0.0.1:${proxyPort}`);
    session.on('error', () => undefined);
    try {
      const growth = await peakGrowthDuring(
        () =>
          new Promise<void>((resolve, reject) => {
            const stream = session.request({
              ':method': 'PUT',
              ':path': '/sink',
              'content-length': String(BODY_BYTES),
            });
            stream.setEncoding('utf8');
            stream.on('data', (c: string) => (answer += c));
            stream.on('end', resolve);
            stream.on('error', reject);
            generated(BODY_BYTES, checksum).pipe(stream);
          }),
      );
      assert.equal(answer, String(BODY_BYTES));
      assert.equal(sinkChecksums.at(-1), checksum.value);
      assert.ok(growth < MAX_GROWTH_BYTES, `the proxy grew by ${Math.round(growth / 1024 / 1024)} MiB`);
    } finally {
      session.destroy();
    }
  });

  it(`downloads ${BODY_BYTES / 1024 / 1024} MiB over h2c with bounded memory`, async () => {
    const checksum = new Checksum();
    let received = 0;
    const session = http2.connect(`http://127.0.0.1:${proxyPort}`);
    session.on('error', () => undefined);
    try {
      const growth = await peakGrowthDuring(
        () =>
          new Promise<void>((resolve, reject) => {
            const stream = session.request({ ':method': 'GET', ':path': '/source' });
            stream.on('data', (c: Buffer) => {
              received += c.length;
              checksum.update(c);
            });
            stream.on('end', resolve);
            stream.on('error', reject);
          }),
      );
      assert.equal(received, BODY_BYTES);
      assert.equal(checksum.value, sourceChecksums.at(-1));
      assert.ok(growth < MAX_GROWTH_BYTES, `the proxy grew by ${Math.round(growth / 1024 / 1024)} MiB`);
    } finally {
      session.destroy();
    }
  });
});
