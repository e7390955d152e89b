import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GlobalFonts } from '@napi-rs/canvas';

/** The printed-digit fonts for SynDigits: npm-shipped woff2 files of distinct families (sans, serif, mono, condensed, heavy). */
export const SYNTH_FONT_PACKAGES = [
  { pkg: 'roboto', weights: [300, 400, 700, 900] },
  { pkg: 'open-sans', weights: [400, 700, 800] },
  { pkg: 'lato', weights: [400, 700, 900] },
  { pkg: 'oswald', weights: [400, 700] },
  { pkg: 'fira-sans', weights: [300, 500, 800] },
  { pkg: 'merriweather', weights: [400, 700, 900] },
  { pkg: 'playfair-display', weights: [400, 700, 900] },
  { pkg: 'pt-serif', weights: [400, 700] },
  { pkg: 'roboto-slab', weights: [300, 500, 800] },
  { pkg: 'roboto-mono', weights: [400, 700] },
  { pkg: 'source-code-pro', weights: [400, 800] },
  { pkg: 'courier-prime', weights: [400, 700] },
  { pkg: 'bebas-neue', weights: [400] },
  { pkg: 'anton', weights: [400] },
  { pkg: 'archivo-black', weights: [400] },
] as const;

export interface SynthFont {
  /** Family name registered with the canvas, e.g. "synth-roboto". */
  readonly family: string;
  readonly weight: number;
  /** `pkg@version` of the font's npm package, part of the dataset cache key. */
  readonly source: string;
}

let loaded: SynthFont[] | null = null;

/** Registers every SynDigits font with @napi-rs/canvas once and returns the (family, weight) list. */
export function loadSynthFonts(): SynthFont[] {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const fonts: SynthFont[] = [];
  for (const { pkg, weights } of SYNTH_FONT_PACKAGES) {
    let root: string;
    try {
      root = dirname(require.resolve(`@fontsource/${pkg}/package.json`));
    } catch {
      throw new Error(`SynDigits font package @fontsource/${pkg} is not installed; run npm ci.`);
    }
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    const family = `synth-${pkg}`;
    for (const weight of weights) {
      const file = join(root, 'files', `${pkg}-latin-${weight}-normal.woff2`);
      if (!existsSync(file)) throw new Error(`SynDigits font file ${file} is missing; run npm ci.`);
      if (!GlobalFonts.registerFromPath(file, family)) throw new Error(`@napi-rs/canvas could not load the font ${file}.`);
      fonts.push({ family, weight, source: `@fontsource/${pkg}@${version}` });
    }
  }
  loaded = fonts;
  return fonts;
}
