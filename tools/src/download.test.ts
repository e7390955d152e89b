import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyVerified, downloadFile } from './download.ts';

const payload = randomBytes(300_000);
const md5 = createHash('md5').update(payload).digest('hex');
const sha256 = createHash('sha256').update(payload).digest('hex');

interface Served {
  server: Server;
  url: string;
  ranges: (string | undefined)[];
  bytesSent: number[];
}

async function serve(options: { ranges: boolean; body?: Buffer }): Promise<Served> {
  const body = options.body ?? payload;
  const s: Served = { server: createServer(), url: '', ranges: [], bytesSent: [] };
  s.server.on('request', (req, res) => {
    const range = req.headers.range;
    s.ranges.push(range);
    const m = /bytes=(\d+)-/.exec(range ?? '');
    if (m && options.ranges) {
      const start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416).end();
        return;
      }
      res.writeHead(206, {
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'content-length': body.length - start,
      });
      s.bytesSent.push(body.length - start);
      res.end(body.subarray(start));
    } else {
      res.writeHead(200, { 'content-length': body.length });
      s.bytesSent.push(body.length);
      res.end(body);
    }
  });
  await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
  const addr = s.server.address();
  s.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/f.bin`;
  return s;
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), 'dann-dl-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('downloads, verifies the MD5, records the SHA-256, then skips a verified file', { timeout: 20_000 }, async () => {
  const s = await serve({ ranges: true });
  await withDir(async (dir) => {
    const r = await downloadFile({ url: s.url, file: 'f.bin', md5 }, dir);
    assert.equal(r.sha256, sha256);
    assert.deepEqual(readFileSync(join(dir, 'f.bin')), payload);
    assert.equal(readFileSync(join(dir, 'f.bin.sha256'), 'utf8').trim(), sha256);
    assert.equal(existsSync(join(dir, 'f.bin.part')), false);
    const again = await downloadFile({ url: s.url, file: 'f.bin', md5 }, dir);
    assert.equal(again.downloaded, 0);
    assert.equal(s.ranges.length, 1);
  });
  s.server.close();
});

test('resumes a partial download with a Range request', { timeout: 20_000 }, async () => {
  const s = await serve({ ranges: true });
  await withDir(async (dir) => {
    writeFileSync(join(dir, 'f.bin.part'), payload.subarray(0, 123_456));
    const r = await downloadFile({ url: s.url, file: 'f.bin', sha256 }, dir);
    assert.equal(r.resumedFrom, 123_456);
    assert.deepEqual(s.ranges, ['bytes=123456-']);
    assert.deepEqual(s.bytesSent, [payload.length - 123_456]);
    assert.deepEqual(readFileSync(join(dir, 'f.bin')), payload);
  });
  s.server.close();
});

test('starts over when the server ignores Range', { timeout: 20_000 }, async () => {
  const s = await serve({ ranges: false });
  await withDir(async (dir) => {
    writeFileSync(join(dir, 'f.bin.part'), Buffer.alloc(1000, 7));
    await downloadFile({ url: s.url, file: 'f.bin', md5 }, dir);
    assert.deepEqual(readFileSync(join(dir, 'f.bin')), payload);
  });
  s.server.close();
});

test('a corrupt download is deleted and reported; nothing half-written remains', { timeout: 20_000 }, async () => {
  const s = await serve({
    ranges: true,
    body: Buffer.concat([payload.subarray(0, 1000), Buffer.from('x'), payload.subarray(1001)]),
  });
  await withDir(async (dir) => {
    await assert.rejects(
      downloadFile({ url: s.url, file: 'f.bin', md5 }, dir),
      /f\.bin: downloaded file is corrupt \(MD5 is [0-9a-f]{32}, expected [0-9a-f]{32}\); it was deleted/,
    );
    assert.equal(existsSync(join(dir, 'f.bin')), false);
    assert.equal(existsSync(join(dir, 'f.bin.part')), false);
  });
  s.server.close();
});

test('an unreachable host and an HTTP error each give one clear sentence', { timeout: 20_000 }, async () => {
  const s = await serve({ ranges: true });
  const url = s.url;
  await new Promise((r) => s.server.close(r));
  await withDir(async (dir) => {
    await assert.rejects(
      downloadFile({ url, file: 'f.bin', md5 }, dir),
      /cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\); this machine may have no internet access/,
    );
  });
  const notFound = createServer((_, res) => res.writeHead(404).end());
  await new Promise<void>((r) => notFound.listen(0, '127.0.0.1', r));
  const port = (notFound.address() as { port: number }).port;
  await withDir(async (dir) => {
    await assert.rejects(downloadFile({ url: `http://127.0.0.1:${port}/x`, file: 'x', md5 }, dir), /answered HTTP 404/);
  });
  notFound.close();
});

test('--from copies: verifies the source before copying and the copy after, keeps a verified file, refuses a corrupt source', async () => {
  await withDir(async (dir) => {
    const from = join(dir, 'from');
    const to = join(dir, 'to');
    await assert.rejects(
      copyVerified({ url: 'http://unused/', file: 'f.bin', sha256 }, from, to),
      /f\.bin: .*from\/f\.bin does not exist; --from must name a folder holding the file\./,
    );
    mkdirSync(from);
    writeFileSync(join(from, 'f.bin'), payload);
    chmodSync(join(from, 'f.bin'), 0o444);
    const logs: string[] = [];
    const r = await copyVerified({ url: 'http://unused/', file: 'f.bin', sha256 }, from, to, {
      log: (l) => logs.push(l),
    });
    assert.equal(r.sha256, sha256);
    assert.deepEqual(readFileSync(join(to, 'f.bin')), payload);
    assert.equal(statSync(join(to, 'f.bin')).mode & 0o777, 0o644);
    assert.equal(readFileSync(join(to, 'f.bin.sha256'), 'utf8').trim(), sha256);
    assert.equal(existsSync(join(to, 'f.bin.part')), false);
    await copyVerified({ url: 'http://unused/', file: 'f.bin', sha256 }, from, to, { log: (l) => logs.push(l) });
    assert.match(logs.at(-1)!, /already present and verified/);
    // A corrupt copy already in place is replaced by the good source.
    writeFileSync(join(to, 'f.bin'), 'junk');
    await copyVerified({ url: 'http://unused/', file: 'f.bin', sha256 }, from, to);
    assert.deepEqual(readFileSync(join(to, 'f.bin')), payload);
    // A corrupt source is refused and nothing is written.
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'g.bin'), payload.subarray(0, 1000));
    await assert.rejects(
      copyVerified({ url: 'http://unused/', file: 'g.bin', sha256 }, bad, to),
      new RegExp(
        `g\\.bin: .*bad/g\\.bin is corrupt or not the published file \\(SHA-256 is [0-9a-f]{64}, expected ${sha256}\\); nothing was copied\\.`,
      ),
    );
    assert.equal(existsSync(join(to, 'g.bin')), false);
    assert.equal(existsSync(join(to, 'g.bin.part')), false);
  });
});
