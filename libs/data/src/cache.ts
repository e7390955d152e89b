import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { validateImageSet, type ImageSet } from './imageset.ts';

/**
 * On-disk cache of generated image sets, keyed by a content hash of everything that
 * determines the pixels (generator version, seed, count, font packages, ...).
 * File layout: "DANNIMG1", u32 header length, JSON header, images, labels.
 */
const MAGIC = 'DANNIMG1';

interface Header {
  name: string;
  count: number;
  height: number;
  width: number;
  channels: 1 | 3;
  sha256: string;
}

export function cacheKeyHash(key: unknown): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('hex');
}

function payloadHash(set: ImageSet): string {
  return createHash('sha256').update(set.images).update(set.labels).digest('hex');
}

export function encodeImageSet(set: ImageSet): Buffer {
  const header: Header = {
    name: set.name,
    count: set.count,
    height: set.height,
    width: set.width,
    channels: set.channels,
    sha256: payloadHash(set),
  };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  return Buffer.concat([Buffer.from(MAGIC), len, json, set.images, set.labels]);
}

/** Parses and verifies a cached set; throws one sentence if anything is off. */
export function decodeImageSet(buf: Buffer, what: string): ImageSet {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC)
    throw new Error(`${what}: not an image-set cache file.`);
  const len = buf.readUInt32LE(8);
  if (12 + len > buf.length) throw new Error(`${what}: truncated header.`);
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + len)) as Header;
  } catch {
    throw new Error(`${what}: header is not valid JSON.`);
  }
  const imageBytes = header.count * header.height * header.width * header.channels;
  const start = 12 + len;
  if (buf.length !== start + imageBytes + header.count)
    throw new Error(
      `${what}: ${buf.length} bytes, expected ${start + imageBytes + header.count}; the file is truncated or corrupt.`,
    );
  const set: ImageSet = {
    name: header.name,
    count: header.count,
    height: header.height,
    width: header.width,
    channels: header.channels,
    images: new Uint8Array(buf.buffer, buf.byteOffset + start, imageBytes),
    labels: new Uint8Array(buf.buffer, buf.byteOffset + start + imageBytes, header.count),
  };
  if (payloadHash(set) !== header.sha256) throw new Error(`${what}: checksum mismatch; the file is corrupt.`);
  return validateImageSet(set);
}

/** Writes a file atomically: a temp file in the same folder, then rename. */
export function writeFileAtomic(file: string, data: Uint8Array, mode?: number): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, data, { mode });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface CacheOptions {
  /** Folder for cache files; created if missing. */
  readonly dir: string;
  /** Called with one line when a cache file is built, rebuilt or unreadable. */
  readonly log?: (line: string) => void;
}

/**
 * Returns the set for `key` from the cache, or builds it, stores it atomically and returns it.
 * A corrupt cache file is reported and rebuilt, never used.
 */
export function cachedImageSet(stem: string, key: unknown, options: CacheOptions, build: () => ImageSet): ImageSet {
  const file = join(options.dir, `${stem.replace(/[^a-z0-9_-]+/gi, '-')}-${cacheKeyHash(key).slice(0, 16)}.imgs`);
  let buf: Buffer | null = null;
  try {
    buf = readFileSync(file);
  } catch {
    // not cached yet
  }
  if (buf) {
    try {
      return decodeImageSet(buf, file);
    } catch (err) {
      options.log?.(`${(err as Error).message} Rebuilding it.`);
    }
  }
  const t0 = performance.now();
  const set = build();
  mkdirSync(options.dir, { recursive: true });
  writeFileAtomic(file, encodeImageSet(set));
  options.log?.(
    `built ${set.name} (${set.count} images) in ${((performance.now() - t0) / 1000).toFixed(1)} s, cached at ${file}`,
  );
  return set;
}
