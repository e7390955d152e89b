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

/**
 * Handwriting-style fonts for `synth-hand` (with the printed ones): the DANN paper's SynNumbers drew on ~1,000
 * Windows fonts, script and hand-lettered ones among them; these npm-shipped families bring that variety.
 */
export const SYNTH_HANDWRITING_FONT_PACKAGES = [
  { pkg: 'caveat', weights: [400, 700] },
  { pkg: 'indie-flower', weights: [400] },
  { pkg: 'kalam', weights: [300, 400, 700] },
  { pkg: 'patrick-hand', weights: [400] },
  { pkg: 'shadows-into-light', weights: [400] },
  { pkg: 'gochi-hand', weights: [400] },
  { pkg: 'architects-daughter', weights: [400] },
  { pkg: 'gloria-hallelujah', weights: [400] },
  { pkg: 'handlee', weights: [400] },
  { pkg: 'reenie-beanie', weights: [400] },
  { pkg: 'covered-by-your-grace', weights: [400] },
  { pkg: 'homemade-apple', weights: [400] },
  { pkg: 'rock-salt', weights: [400] },
  { pkg: 'permanent-marker', weights: [400] },
  { pkg: 'dancing-script', weights: [400, 700] },
  { pkg: 'schoolbell', weights: [400] },
  { pkg: 'sue-ellen-francisco', weights: [400] },
  { pkg: 'the-girl-next-door', weights: [400] },
  { pkg: 'swanky-and-moo-moo', weights: [400] },
  { pkg: 'nanum-pen-script', weights: [400] },
] as const;

export type SynthFontSet = 'printed' | 'printed+handwriting';

export interface SynthFont {
  /** Family name registered with the canvas, e.g. "synth-roboto". */
  readonly family: string;
  readonly weight: number;
  /** `pkg@version` of the font's npm package, part of the dataset cache key. */
  readonly source: string;
}

const loaded = new Map<SynthFontSet, SynthFont[]>();

/** Registers the fonts of a SynDigits font set with @napi-rs/canvas once and returns the (family, weight) list. */
export function loadSynthFonts(set: SynthFontSet = 'printed'): SynthFont[] {
  const known = loaded.get(set);
  if (known) return known;
  const require = createRequire(import.meta.url);
  const fonts: SynthFont[] = [];
  const packages =
    set === 'printed' ? SYNTH_FONT_PACKAGES : [...SYNTH_FONT_PACKAGES, ...SYNTH_HANDWRITING_FONT_PACKAGES];
  for (const { pkg, weights } of packages) {
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
      if (!GlobalFonts.registerFromPath(file, family))
        throw new Error(`@napi-rs/canvas could not load the font ${file}.`);
      fonts.push({ family, weight, source: `@fontsource/${pkg}@${version}` });
    }
  }
  loaded.set(set, fonts);
  return fonts;
}
