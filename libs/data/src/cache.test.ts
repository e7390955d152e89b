import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedImageSet, decodeImageSet, encodeImageSet } from './cache.ts';
import type { ImageSet } from './imageset.ts';

const set: ImageSet = {
  name: 'toy',
  count: 3,
  height: 2,
  width: 2,
  channels: 1,
  images: Uint8Array.from({ length: 12 }, (_, i) => i * 7),
  labels: Uint8Array.from([1, 2, 3]),
};

test('encodes and decodes an image set exactly', () => {
  const back = decodeImageSet(encodeImageSet(set), 'f');
  assert.deepEqual(
    { ...back, images: [...back.images], labels: [...back.labels] },
    { ...set, images: [...set.images], labels: [...set.labels] },
  );
});

test('builds once, then serves from disk; a corrupt file is reported and rebuilt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dann-cache-'));
  try {
    let builds = 0;
    const logs: string[] = [];
    const get = () =>
      cachedImageSet('toy', { v: 1 }, { dir, log: (l) => logs.push(l) }, () => {
        builds++;
        return set;
      });
    get();
    const again = get();
    assert.equal(builds, 1);
    assert.deepEqual([...again.images], [...set.images]);
    const [file] = readdirSync(dir);
    assert.match(file, /^toy-[0-9a-f]{16}\.imgs$/);
    const bytes = readFileSync(join(dir, file));
    bytes[bytes.length - 5] ^= 0xff;
    writeFileSync(join(dir, file), bytes);
    get();
    assert.equal(builds, 2);
    assert.ok(
      logs.some((l) => /checksum mismatch; the file is corrupt\. Rebuilding it\./.test(l)),
      logs.join('\n'),
    );
    writeFileSync(join(dir, file), bytes.subarray(0, 30));
    get();
    assert.equal(builds, 3);
    // A different key is a different file; no temp files are left behind.
    cachedImageSet('toy', { v: 2 }, { dir }, () => set);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp')),
      [],
    );
    assert.equal(readdirSync(dir).length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
