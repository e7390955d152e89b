/** A labelled set of uint8 images, stored contiguously as N x H x W x C (channels last). */
export interface ImageSet {
  /** Human-readable name, e.g. "mnist/train". */
  readonly name: string;
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly channels: 1 | 3;
  /** count * height * width * channels bytes. */
  readonly images: Uint8Array;
  /** count labels, each 0..9. */
  readonly labels: Uint8Array;
}

export const NUM_CLASSES = 10;

/** Throws one clear sentence if the set's buffers do not match its declared shape or labels are out of range. */
export function validateImageSet(set: ImageSet): ImageSet {
  const expected = set.count * set.height * set.width * set.channels;
  if (set.images.length !== expected) {
    throw new Error(
      `${set.name}: image buffer holds ${set.images.length} bytes but ${set.count}x${set.height}x${set.width}x${set.channels} needs ${expected}.`,
    );
  }
  if (set.labels.length !== set.count) {
    throw new Error(`${set.name}: ${set.labels.length} labels for ${set.count} images.`);
  }
  for (let i = 0; i < set.labels.length; i++) {
    if (set.labels[i] >= NUM_CLASSES) {
      throw new Error(`${set.name}: label ${set.labels[i]} at index ${i} is not a digit 0-9.`);
    }
  }
  return set;
}

/** The pixels of image i (a view, not a copy). */
export function imageAt(set: ImageSet, i: number): Uint8Array {
  const size = set.height * set.width * set.channels;
  return set.images.subarray(i * size, (i + 1) * size);
}

/** Images start..end-1 of a set (views, no copy). */
export function sliceSet(set: ImageSet, start: number, end: number, name = set.name): ImageSet {
  const size = set.height * set.width * set.channels;
  const s = Math.max(0, Math.min(start, set.count));
  const e = Math.max(s, Math.min(end, set.count));
  return {
    ...set,
    name,
    count: e - s,
    images: set.images.subarray(s * size, e * size),
    labels: set.labels.subarray(s, e),
  };
}

/** The first `limit` images of a set (views, no copy). */
export function takeFirst(set: ImageSet, limit: number): ImageSet {
  return limit >= set.count ? set : sliceSet(set, 0, limit);
}

/**
 * The set as grey images with light ink on a dark ground, as MNIST's digits are: colour becomes luminance, and an
 * image whose mean is below its median (the ink, a minority of the pixels, is darker than the ground) is inverted.
 */
export function lightOnDark(set: ImageSet, name = set.name): ImageSet {
  const pixels = set.height * set.width;
  const images = new Uint8Array(set.count * pixels);
  const sorted = new Uint8Array(pixels);
  for (let i = 0; i < set.count; i++) {
    const src = set.images.subarray(i * pixels * set.channels, (i + 1) * pixels * set.channels);
    const grey = images.subarray(i * pixels, (i + 1) * pixels);
    let sum = 0;
    for (let p = 0; p < pixels; p++) {
      grey[p] =
        set.channels === 1 ? src[p] : Math.round(0.299 * src[3 * p] + 0.587 * src[3 * p + 1] + 0.114 * src[3 * p + 2]);
      sum += grey[p];
    }
    sorted.set(grey);
    sorted.sort();
    if (sum / pixels < sorted[pixels >> 1]) for (let p = 0; p < pixels; p++) grey[p] = 255 - grey[p];
  }
  return { name, count: set.count, height: set.height, width: set.width, channels: 1, images, labels: set.labels };
}
