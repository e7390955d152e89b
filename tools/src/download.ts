import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  readFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A file to fetch, with the digest that proves it is the right one. */
export interface RemoteFile {
  readonly url: string;
  readonly file: string;
  /** Published digests; at least one. SHA-256 is also recorded beside the file after the first verified download. */
  readonly md5?: string;
  readonly sha256?: string;
}

export interface DownloadOptions {
  readonly log?: (line: string) => void;
  /** Milliseconds without progress before giving up (the partial file is kept for a resume). */
  readonly stallMs?: number;
}

export interface DownloadResult {
  readonly path: string;
  readonly sha256: string;
  readonly downloaded: number;
  readonly resumedFrom: number;
}

async function digests(path: string): Promise<{ md5: string; sha256: string }> {
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  for await (const chunk of createReadStream(path)) {
    md5.update(chunk as Buffer);
    sha.update(chunk as Buffer);
  }
  return { md5: md5.digest('hex'), sha256: sha.digest('hex') };
}

/** Null if the file matches every digest we know for it, else a sentence saying which differs. */
async function mismatch(path: string, spec: RemoteFile): Promise<{ problem: string | null; sha256: string }> {
  const d = await digests(path);
  const sidecar = `${path}.sha256`;
  const pinned = spec.sha256 ?? (existsSync(sidecar) ? readFileSync(sidecar, 'utf8').trim() : undefined);
  if (pinned && pinned !== d.sha256) return { problem: `SHA-256 is ${d.sha256}, expected ${pinned}`, sha256: d.sha256 };
  if (spec.md5 && spec.md5 !== d.md5) return { problem: `MD5 is ${d.md5}, expected ${spec.md5}`, sha256: d.sha256 };
  return { problem: null, sha256: d.sha256 };
}

/**
 * Downloads `spec` into `dir` with resume (HTTP Range on `<file>.part`) and digest verification.
 * The final file appears only once verified (rename of the checked .part); a mismatch deletes the .part.
 */
export async function downloadFile(
  spec: RemoteFile,
  dir: string,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  if (!spec.md5 && !spec.sha256) throw new Error(`${spec.file}: no published digest to verify it against.`);
  const log = options.log ?? (() => {});
  mkdirSync(dir, { recursive: true });
  const final = join(dir, spec.file);
  const part = `${final}.part`;
  if (existsSync(final)) {
    const { problem, sha256 } = await mismatch(final, spec);
    if (!problem) {
      log(`${spec.file}: already present and verified`);
      return { path: final, sha256, downloaded: 0, resumedFrom: 0 };
    }
    log(`${spec.file}: present but ${problem}; downloading it again`);
    rmSync(final);
  }
  const have = existsSync(part) ? statSync(part).size : 0;
  const controller = new AbortController();
  const stallMs = options.stallMs ?? 60_000;
  let timer = setTimeout(() => controller.abort(), stallMs);
  const host = new URL(spec.url).host;
  let res: Response;
  try {
    res = await fetch(spec.url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {}, signal: controller.signal });
  } catch (err) {
    clearTimeout(timer);
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new Error(
      `${spec.file}: cannot reach ${host} (${cause}); this machine may have no internet access: download ${spec.url} elsewhere and copy it to ${final}.`,
    );
  }
  let resumedFrom = 0;
  let flags = 'w';
  if (res.status === 206 && have > 0) {
    const start = /bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
    if (Number(start) !== have)
      throw new Error(`${spec.file}: server resumed at byte ${start}, not ${have}; delete ${part} and retry.`);
    resumedFrom = have;
    flags = 'a';
    log(`${spec.file}: resuming at ${(have / 1e6).toFixed(1)} MB`);
  } else if (res.status === 416 && have > 0) {
    // Range not satisfiable: the partial file is already complete; verify it below.
    await res.body?.cancel();
    resumedFrom = have;
    flags = '';
  } else if (res.status !== 200) {
    clearTimeout(timer);
    await res.body?.cancel();
    throw new Error(`${spec.file}: ${host} answered HTTP ${res.status} ${res.statusText} for ${spec.url}.`);
  } else if (have > 0) {
    log(`${spec.file}: server does not resume; starting over`);
  }
  let downloaded = 0;
  if (flags) {
    const total = Number(res.headers.get('content-length') ?? 0) + resumedFrom;
    let lastLog = 0;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      downloaded += chunk.length;
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), stallMs);
      const now = Date.now();
      if (now - lastLog > 2000 && total > 0) {
        lastLog = now;
        log(
          `${spec.file}: ${(((resumedFrom + downloaded) / total) * 100).toFixed(1)}% of ${(total / 1e6).toFixed(1)} MB`,
        );
      }
    });
    try {
      await pipeline(body, createWriteStream(part, { flags }));
    } catch (err) {
      throw new Error(
        `${spec.file}: download interrupted after ${((resumedFrom + downloaded) / 1e6).toFixed(1)} MB (${(err as Error).message}); run the command again to resume.`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
  clearTimeout(timer);
  const { problem, sha256 } = await mismatch(part, spec);
  if (problem) {
    rmSync(part, { force: true });
    throw new Error(`${spec.file}: downloaded file is corrupt (${problem}); it was deleted, run the command again.`);
  }
  renameSync(part, final);
  writeFileSync(`${final}.sha256`, `${sha256}\n`);
  log(`${spec.file}: verified (sha256 ${sha256})`);
  return { path: final, sha256, downloaded, resumedFrom };
}

/**
 * The offline twin of downloadFile: copies `spec.file` from `fromDir` (a copy made on a machine with internet
 * access, or a shared folder) into `dir`, verifying the source's digests before copying and the copy's after;
 * the final file appears only once verified, and a file already there and verified is kept.
 */
export async function copyVerified(
  spec: RemoteFile,
  fromDir: string,
  dir: string,
  options: Pick<DownloadOptions, 'log'> = {},
): Promise<DownloadResult> {
  if (!spec.md5 && !spec.sha256) throw new Error(`${spec.file}: no published digest to verify it against.`);
  const log = options.log ?? (() => {});
  const source = join(fromDir, spec.file);
  const final = join(dir, spec.file);
  mkdirSync(dir, { recursive: true });
  if (existsSync(final)) {
    const { problem, sha256 } = await mismatch(final, spec);
    if (!problem) {
      log(`${spec.file}: already present and verified`);
      return { path: final, sha256, downloaded: 0, resumedFrom: 0 };
    }
    if (resolve(source) === resolve(final))
      throw new Error(`${final} is corrupt (${problem}); copy a good one from elsewhere.`);
    log(`${spec.file}: present but ${problem}; copying it again`);
    rmSync(final);
  }
  if (!existsSync(source))
    throw new Error(`${spec.file}: ${source} does not exist; --from must name a folder holding the file.`);
  const checked = await mismatch(source, spec);
  if (checked.problem)
    throw new Error(
      `${spec.file}: ${source} is corrupt or not the published file (${checked.problem}); nothing was copied.`,
    );
  const part = `${final}.part`;
  copyFileSync(source, part);
  chmodSync(part, 0o644); // the source may be read-only (a shared copy); ours is an ordinary data file
  const { problem, sha256 } = await mismatch(part, spec);
  if (problem) {
    rmSync(part, { force: true });
    throw new Error(
      `${spec.file}: the copy in ${dir} does not match its source (${problem}); it was deleted, run the command again.`,
    );
  }
  renameSync(part, final);
  writeFileSync(`${final}.sha256`, `${sha256}\n`);
  log(`${spec.file}: copied from ${fromDir} and verified (sha256 ${sha256})`);
  return { path: final, sha256, downloaded: statSync(final).size, resumedFrom: 0 };
}
