import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { brotliDecompressSync, createBrotliDecompress } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';

/**
 * The one place that picks the Chromium the page tests and the page benchmark drive with playwright-core.
 *
 * - `system`: Debian's `/usr/bin/chromium` (`apt-get install chromium`).
 * - `npm`: the headless Chromium shipped inside the `@sparticuz/chromium` npm package (a devDependency, so
 *   `npm ci` brings it from the npm registry; its install downloads nothing). The package holds it
 *   brotli-compressed with the NSS libraries it links against and a font; the first launch unpacks them into
 *   `node_modules/.cache/` (~190 MB, a few seconds) and later launches reuse them. Linux x64 only.
 *
 * `DANN_BROWSER=system|npm` forces one; unset (or `auto`), the system one is used where it exists, otherwise
 * the npm one. When none can be had, the error is one sentence that says what to install.
 */
export const SYSTEM_CHROMIUM = '/usr/bin/chromium';
export const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
];
const NPM_PACKAGE = '@sparticuz/chromium';

export interface ChromiumChoice {
  readonly kind: 'system' | 'npm';
  readonly executablePath: string;
  /** Environment for the browser process (the npm build's own libraries and fonts). */
  readonly env?: Record<string, string>;
  /** For logs: which browser, e.g. `@sparticuz/chromium 143.0.4 (npm)`. */
  readonly describe: string;
}

function wanted(): 'auto' | 'system' | 'npm' {
  const v = process.env.DANN_BROWSER ?? 'auto';
  if (v === '' || v === 'auto' || v === 'system' || v === 'npm') return v || 'auto';
  throw new Error(`DANN_BROWSER=${v} is not one of system, npm or auto.`);
}

/** The npm package's folder, or undefined when it is not installed (e.g. `npm ci --omit=dev`). */
function npmPackageDir(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve(NPM_PACKAGE);
    let dir = dirname(entry);
    while (
      !existsSync(join(dir, 'package.json')) ||
      JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== NPM_PACKAGE
    ) {
      if (dirname(dir) === dir) return undefined;
      dir = dirname(dir);
    }
    return dir;
  } catch {
    return undefined;
  }
}

/** Writes the regular files and folders of an uncompressed (ustar) tar archive under `dest`. */
function untar(tar: Buffer, dest: string): void {
  for (let off = 0; off + 512 <= tar.length && tar[off] !== 0; ) {
    const field = (start: number, length: number) =>
      tar.toString('latin1', off + start, off + start + length).replace(/\0.*$/s, '');
    const name = [field(345, 155), field(0, 100)].filter(Boolean).join('/');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    if (name.split('/').includes('..') || name.startsWith('/'))
      throw new Error(`unsafe path ${name} in ${NPM_PACKAGE}'s archive`);
    if (type === '5') mkdirSync(join(dest, name), { recursive: true });
    else if (type === '0') {
      mkdirSync(dirname(join(dest, name)), { recursive: true });
      writeFileSync(join(dest, name), tar.subarray(off + 512, off + 512 + size), {
        mode: parseInt(field(100, 8).trim() || '644', 8) & 0o777,
      });
    } else if (type !== 'x' && type !== 'g')
      throw new Error(`unexpected entry type ${type} (${name}) in ${NPM_PACKAGE}'s archive`);
    off += 512 + Math.ceil(size / 512) * 512;
  }
}

/** Unpacks the npm package's Chromium, libraries and font once per package version (atomically, so concurrent callers are safe). */
async function unpackNpmChromium(pkg: string): Promise<ChromiumChoice> {
  const { version } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { version: string };
  const bin = join(pkg, 'bin');
  // node_modules/.cache beside the package: `npm ci` wipes it together with the package.
  const at = pkg.lastIndexOf('node_modules');
  const cache = at >= 0 ? join(pkg.slice(0, at + 'node_modules'.length), '.cache') : join(tmpdir(), 'dann-cache');
  const dir = join(cache, `dann-chromium-${version}`);
  if (!existsSync(join(dir, 'chromium'))) {
    const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
    try {
      mkdirSync(tmp, { recursive: true });
      await pipeline(
        createReadStream(join(bin, 'chromium.br')),
        createBrotliDecompress(),
        createWriteStream(join(tmp, 'chromium'), { mode: 0o755 }),
      );
      untar(brotliDecompressSync(readFileSync(join(bin, 'al2023.tar.br'))), tmp); // lib/: NSS, NSPR, expat
      untar(brotliDecompressSync(readFileSync(join(bin, 'fonts.tar.br'))), tmp); // fonts/: Open Sans
      writeFileSync(
        join(tmp, 'fonts.conf'),
        `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${join(dir, 'fonts')}</dir>\n  <cachedir>${join(dir, 'fonts-cache')}</cachedir>\n</fontconfig>\n`,
      );
      try {
        renameSync(tmp, dir);
      } catch (e) {
        if (!existsSync(join(dir, 'chromium'))) throw e; // otherwise another process unpacked it first
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const lib = join(dir, 'lib');
  return {
    kind: 'npm',
    executablePath: join(dir, 'chromium'),
    env: {
      LD_LIBRARY_PATH: [lib, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':'),
      FONTCONFIG_FILE: join(dir, 'fonts.conf'),
    },
    describe: `${NPM_PACKAGE} ${version} (npm)`,
  };
}

/** Which Chromium to drive (see the module comment); throws one sentence when there is none. */
export async function chooseChromium(): Promise<ChromiumChoice> {
  const want = wanted();
  if (want !== 'npm' && existsSync(SYSTEM_CHROMIUM))
    return { kind: 'system', executablePath: SYSTEM_CHROMIUM, describe: `${SYSTEM_CHROMIUM} (system)` };
  if (want === 'system')
    throw new Error(
      `DANN_BROWSER=system but ${SYSTEM_CHROMIUM} is missing: apt-get install chromium, or leave DANN_BROWSER unset to use the npm one.`,
    );
  const why =
    want === 'npm' ? 'DANN_BROWSER=npm but' : `no Chromium for the browser tests: ${SYSTEM_CHROMIUM} is missing and`;
  const pkg = npmPackageDir();
  if (!pkg)
    throw new Error(
      `${why} ${NPM_PACKAGE} is not installed (run npm ci with dev dependencies${want === 'npm' ? '' : ', or apt-get install chromium'}).`,
    );
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `${why} ${NPM_PACKAGE} ships one for linux x64 only, not ${process.platform} ${process.arch} (apt-get install chromium, or another distribution's package at ${SYSTEM_CHROMIUM}).`,
    );
  }
  return unpackNpmChromium(pkg);
}

/** Launches the chosen Chromium headless with flags that work offline and as root. */
export async function launchBrowser(): Promise<{ browser: Browser; choice: ChromiumChoice }> {
  const choice = await chooseChromium();
  const browser = await chromium.launch({
    executablePath: choice.executablePath,
    args: LAUNCH_ARGS,
    ...(choice.env ? { env: { ...process.env, ...choice.env } } : {}),
  });
  return { browser, choice };
}
