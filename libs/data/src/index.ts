export { type ImageSet, NUM_CLASSES, validateImageSet, imageAt, takeFirst, sliceSet } from './imageset.ts';
export { parseIdx, type IdxArray } from './idx.ts';
export { loadMnist, mnistFromIdx, mnistDir, type Split } from './mnist.ts';
export { readMat, type MatArray, type MatClass, type MatData } from './mat.ts';
export { loadSvhn, svhnFromMat, SVHN_FILES } from './svhn.ts';
export {
  loadUsps,
  uspsFromGzip,
  uspsFromText,
  uspsPixel,
  uspsHowToGet,
  uspsForm,
  USPS_FILES,
  USPS_COUNTS,
  USPS_SHA256,
  USPS_BYTES,
  USPS_SIZE,
  USPS_PAD,
  USPS_FRAME,
  type UspsLoadOptions,
} from './usps.ts';
export { generateSynthDigits, SYNTH_VERSION, SYNTH_SIZE, type SynthOptions } from './synth.ts';
export { loadSynthFonts, SYNTH_FONT_PACKAGES, type SynthFont } from './fonts.ts';
export {
  generateMnistM,
  proceduralTexture,
  MNISTM_VERSION,
  MNISTM_DEFAULT_CONTRAST,
  MNISTM_DEFAULT_BRIGHTNESS,
  type MnistMOptions,
} from './mnistm.ts';
export { cachedImageSet, encodeImageSet, decodeImageSet, writeFileAtomic, cacheKeyHash } from './cache.ts';
export {
  PREPROCESSING,
  INPUT_SIZE,
  preprocessImage,
  preprocessBatch,
  resizeBilinear,
  type Preprocessing,
} from './preprocess.ts';
export {
  AUGMENTATIONS,
  AUGMENTATION_NAMES,
  augmentImage,
  type Augmentation,
  type AugmentationName,
} from './augment.ts';
export { imagePng, writeSetPngs } from './png.ts';
export { prepareDigit, DIGIT_PREPARATION, type RgbaImage, type PreparedDigit } from './digit.ts';
export {
  epochPermutation,
  shardIndices,
  splitBatch,
  pairedBatches,
  type PairedBatch,
  type PairedOptions,
} from './sampler.ts';
export { createRng, mixSeed, type Rng } from './rng.ts';
export {
  DATASETS,
  type DatasetName,
  isDatasetName,
  loadDataset,
  type LoadOptions,
  defaultDataDir,
  workspaceRoot,
  SYNTH_DEFAULT_COUNT,
  DEFAULT_DATA_SEED,
} from './datasets.ts';
