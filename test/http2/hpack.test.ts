import { strict as assert } from 'node:assert';
import * as fc from 'fast-check';
import { HUFFMAN_CODES, HpackDecoder, HpackEncoder } from '../../http2';

/** Bytes from the hex of RFC 7541's examples (spaces and newlines ignored). */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function decode(decoder: HpackDecoder, block: Buffer): [string, string][] {
  const fields: string[] = [];
  const error = decoder.decode(block, fields);
  assert.equal(error, undefined);
  const pairs: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  return pairs;
}

function decodeError(block: Buffer, decoder = new HpackDecoder()): string | undefined {
  return decoder.decode(block, []);
}

describe('http2: HPACK (RFC 7541)', () => {
  it('derives the Huffman codes of Appendix B from their lengths', () => {
    // A few rows of Appendix B: symbol → code.
    assert.equal(HUFFMAN_CODES[0], 0x1ff8);
    assert.equal(HUFFMAN_CODES[' '.charCodeAt(0)], 0x14);
    assert.equal(HUFFMAN_CODES['0'.charCodeAt(0)], 0x0);
    assert.equal(HUFFMAN_CODES['a'.charCodeAt(0)], 0x3);
    assert.equal(HUFFMAN_CODES['z'.charCodeAt(0)], 0x7b);
    assert.equal(HUFFMAN_CODES['~'.charCodeAt(0)], 0x1ffd);
    assert.equal(HUFFMAN_CODES[255], 0x3ffffee);
    assert.equal(HUFFMAN_CODES[256], 0x3fffffff);
  });

  describe('decodes the examples of Appendix C', () => {
    it('C.2: the literal representations and an indexed field', () => {
      const decoder = new HpackDecoder();
      assert.deepEqual(
        decode(decoder, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')),
        [['custom-key', 'custom-header']],
      );
      assert.deepEqual(decoder.dynamicTable(), [['custom-key', 'custom-header']]);
      assert.equal(decoder.dynamicTableSize(), 55);

      const fresh = new HpackDecoder();
      assert.deepEqual(decode(fresh, hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
      assert.deepEqual(decode(fresh, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [
        ['password', 'secret'],
      ]);
      assert.deepEqual(decode(fresh, hex('82')), [[':method', 'GET']]);
      assert.deepEqual(fresh.dynamicTable(), []);
    });

    const requests = [
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
      ],
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
        ['cache-control', 'no-cache'],
      ],
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ],
    ];
    const requestTables = [
      [[':authority', 'www.example.com']],
      [
        ['cache-control', 'no-cache'],
        [':authority', 'www.example.com'],
      ],
      [
        ['custom-key', 'custom-value'],
        ['cache-control', 'no-cache'],
        [':authority', 'www.example.com'],
      ],
    ];
    const requestSizes = [57, 110, 164];

    it('C.3: requests without Huffman coding', () => {
      const decoder = new HpackDecoder();
      const blocks = [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ];
      blocks.forEach((block, i) => {
        assert.deepEqual(decode(decoder, hex(block)), requests[i]);
        assert.deepEqual(decoder.dynamicTable(), requestTables[i]);
        assert.equal(decoder.dynamicTableSize(), requestSizes[i]);
      });
    });

    it('C.4: requests with Huffman coding', () => {
      const decoder = new HpackDecoder();
      const blocks = [
        '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
        '8286 84be 5886 a8eb 1064 9cbf',
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      ];
      blocks.forEach((block, i) => {
        assert.deepEqual(decode(decoder, hex(block)), requests[i]);
        assert.deepEqual(decoder.dynamicTable(), requestTables[i]);
        assert.equal(decoder.dynamicTableSize(), requestSizes[i]);
      });
    });

    const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
    const responses = [
      [
        [':status', '302'],
        ['cache-control', 'private'],
        ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
        ['location', 'https://www.example.com'],
      ],
      [
        [':status', '307'],
        ['cache-control', 'private'],
        ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
        ['location', 'https://www.example.com'],
      ],
      [
        [':status', '200'],
        ['cache-control', 'private'],
        ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
        ['location', 'https://www.example.com'],
        ['content-encoding', 'gzip'],
        ['set-cookie', cookie],
      ],
    ];
    const responseTables = [
      [
        ['location', 'https://www.example.com'],
        ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
        ['cache-control', 'private'],
        [':status', '302'],
      ],
      [
        [':status', '307'],
        ['location', 'https://www.example.com'],
        ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
        ['cache-control', 'private'],
      ],
      [
        ['set-cookie', cookie],
        ['content-encoding', 'gzip'],
        ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
      ],
    ];
    const responseSizes = [222, 222, 215];

    it('C.5: responses without Huffman coding, evicting from a 256-octet table', () => {
      const decoder = new HpackDecoder(256);
      const blocks = [
        `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d`,
        '4803 3330 37c1 c0bf',
        `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31`,
      ];
      blocks.forEach((block, i) => {
        assert.deepEqual(decode(decoder, hex(block)), responses[i]);
        assert.deepEqual(decoder.dynamicTable(), responseTables[i]);
        assert.equal(decoder.dynamicTableSize(), responseSizes[i]);
      });
    });

    it('C.6: responses with Huffman coding, evicting from a 256-octet table', () => {
      const decoder = new HpackDecoder(256);
      const blocks = [
        `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
        '4883 640e ffc1 c0bf',
        `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      ];
      blocks.forEach((block, i) => {
        assert.deepEqual(decode(decoder, hex(block)), responses[i]);
        assert.deepEqual(decoder.dynamicTable(), responseTables[i]);
        assert.equal(decoder.dynamicTableSize(), responseSizes[i]);
      });
    });
  });

  it('applies a table size update: evicts down to it, and refuses one above the setting', () => {
    const decoder = new HpackDecoder();
    decode(decoder, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    assert.equal(decoder.dynamicTableSize(), 55);
    // 0x20: size update to 0, then 0x3f e1 1f: size update to 4096 again.
    assert.deepEqual(decode(decoder, hex('20 3fe11f 82')), [[':method', 'GET']]);
    assert.deepEqual(decoder.dynamicTable(), []);
    // 4097 is above the 4096 we announced.
    assert.match(decodeError(hex('3fe21f')) ?? '', /size update to 4097, above the 4096 allowed/);
    assert.match(decodeError(hex('82 20')) ?? '', /size update after a header field/);
  });

  describe('answers malformed blocks with an error, never a throw', () => {
    const cases: [string, string, RegExp][] = [
      ['a truncated integer', 'ff', /truncated integer/],
      ['an integer above 2^31 - 1', 'ff ffffffff0f', /integer above/],
      // 0x80 continuation bytes add nothing: an over-long encoding of a small index.
      ['an over-long integer', `ff ${'80'.repeat(200)}00`, /integer encoding longer/],
      ['an over-long table size update', `3f ${'80'.repeat(200)}00`, /integer encoding longer/],
      ['an over-long string length', `00 7f ${'80'.repeat(200)}00`, /integer encoding longer/],
      ['index 0', '80', /index 0/],
      ['an index beyond the tables', 'be', /index 62 beyond the tables \(61\)/],
      ['a literal name index beyond the tables', '7f00 0161', /index 63 beyond/],
      ['a string longer than the block', '00 05 61', /past the block's end/],
      ['a missing value', '00 0161', /truncated string literal/],
      ['Huffman padding of zeros', '00 8100 0161', /padding is not the EOS prefix/],
      ['Huffman padding of 8 bits', '00 82 0fff 0161', /longer than 7 bits/],
      ['EOS inside a Huffman string', '00 84 ffffffff 0161', /contains EOS/],
    ];
    for (const [what, block, message] of cases) {
      it(what, () => assert.match(decodeError(hex(block)) ?? 'no error', message));
    }

    it('random bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          const error = new HpackDecoder().decode(Buffer.from(bytes), []);
          assert.ok(error === undefined || typeof error === 'string');
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('encoder', () => {
    const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);
    const value = fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 80,
    });

    it('round-trips through the decoder, block after block, within any table size', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.array(fc.tuple(fc.oneof(token, fc.constantFrom(':path', ':authority', 'te')), value), {
              maxLength: 12,
            }),
            {
              minLength: 1,
              maxLength: 20,
            },
          ),
          fc.option(fc.integer({ min: 0, max: 4096 }), { nil: undefined }),
          (blocks, tableSize) => {
            const encoder = new HpackEncoder();
            const decoder = new HpackDecoder();
            blocks.forEach((block, i) => {
              if (i === 1 && tableSize !== undefined) encoder.setMaxTableSize(tableSize);
              encoder.begin();
              for (const [name, v] of block) encoder.header(name, v);
              assert.deepEqual(decode(decoder, Buffer.from(encoder.end())), block);
            });
          },
        ),
        { numRuns: 300 },
      );
    });

    it('round-trips past the names it remembers: thousands of new names, some repeated', () => {
      const encoder = new HpackEncoder();
      const decoder = new HpackDecoder();
      for (let b = 0; b < 300; b++) {
        // Ten new names a block, and two that come back in every block.
        const block: [string, string][] = [
          ['x-steady', 'same'],
          ['content-type', 'text/plain'],
        ];
        for (let i = 0; i < 10; i++) block.push([`x-name-${b}-${i}`, `v${b % 3}`]);
        encoder.begin();
        for (const [name, v] of block) encoder.header(name, v);
        assert.deepEqual(decode(decoder, Buffer.from(encoder.end())), block);
      }
    });

    it('sends a repeated request as one-byte indexes, and a changing value without indexing', () => {
      const encoder = new HpackEncoder();
      const decoder = new HpackDecoder();
      const request = (id: string): Buffer => {
        encoder.begin();
        encoder.header(':method', 'POST');
        encoder.header(':scheme', 'http');
        encoder.header(':path', '/istio.mixer.v1.Mixer/Report');
        encoder.header(':authority', '127.0.0.1:9091');
        encoder.header('content-type', 'application/grpc');
        encoder.header('te', 'trailers');
        encoder.header('grpc-timeout', '5000m');
        encoder.header('x-switchboard-report-id', id);
        return Buffer.from(encoder.end());
      };
      const first = request('a1b2c3');
      assert.equal(first[0], 0x83, ':method POST is static index 3');
      assert.equal(first[1], 0x86, ':scheme http is static index 6');
      decode(decoder, first);
      const second = request('d4e5f6');
      // 7 indexed fields, then the id: without indexing (0000), its name from the dynamic table.
      assert.deepEqual(
        [...second.subarray(0, 7)].map((b) => b >= 0x80),
        Array(7).fill(true),
      );
      assert.equal(second[7]! & 0xf0, 0x00);
      assert.equal(second.length, 7 + 2 + 1 + 6, '7 indexes, a 2-octet name index, a length, 6 octets');
      assert.equal(decode(decoder, second)[7]![1], 'd4e5f6');
      const sizeBefore = decoder.dynamicTableSize();
      decode(decoder, request('0a0b0c'));
      assert.equal(decoder.dynamicTableSize(), sizeBefore, 'ids do not fill the table');
    });

    it('signals a smaller table to the decoder and keeps within it', () => {
      const encoder = new HpackEncoder();
      const decoder = new HpackDecoder();
      encoder.begin();
      encoder.header('x-long', 'v'.repeat(100));
      decode(decoder, Buffer.from(encoder.end()));
      assert.equal(decoder.dynamicTableSize(), 138);
      encoder.setMaxTableSize(64);
      encoder.begin();
      encoder.header('x-long', 'v'.repeat(100));
      const block = Buffer.from(encoder.end());
      assert.equal(block[0]! & 0xe0, 0x20, 'starts with a size update');
      assert.deepEqual(decode(decoder, block), [['x-long', 'v'.repeat(100)]]);
      assert.equal(decoder.dynamicTableSize(), 0);
    });
  });
});
