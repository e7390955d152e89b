/** Layer lists for the DANN network: a feature extractor, a label head and a domain head. */
export type Layer =
  | {
      readonly kind: 'conv';
      readonly filters: number;
      readonly kernel: number;
      readonly padding: 'same' | 'valid';
      readonly activation: 'relu' | 'linear';
    }
  | { readonly kind: 'maxpool'; readonly size: number; readonly stride: number }
  | { readonly kind: 'dropout'; readonly rate: number }
  | { readonly kind: 'flatten' }
  | { readonly kind: 'dense'; readonly units: number; readonly activation: 'relu' | 'linear' };

export interface Architecture {
  readonly name: string;
  /** Where the architecture comes from. */
  readonly source: string;
  readonly input: {
    readonly height: number;
    readonly width: number;
    readonly channels: number;
  };
  /** Ends in the feature layer that the GRL and the domain head read. */
  readonly features: readonly Layer[];
  /** Ends in 10 logits. */
  readonly label: readonly Layer[];
  /** After the GRL; ends in 2 logits (source, target). */
  readonly domain: readonly Layer[];
}

const conv = (filters: number, kernel: number, padding: 'same' | 'valid'): Layer => ({
  kind: 'conv',
  filters,
  kernel,
  padding,
  activation: 'relu',
});
const dense = (units: number, activation: 'relu' | 'linear' = 'relu'): Layer => ({ kind: 'dense', units, activation });
const pool = (size: number, stride = size): Layer => ({ kind: 'maxpool', size, stride });
const dropout = (rate: number): Layer => ({ kind: 'dropout', rate });
const flatten: Layer = { kind: 'flatten' };
const input = { height: 32, width: 32, channels: 3 };

export const PRESETS = {
  seed: {
    name: 'seed',
    source: 'the reference Keras DANN project (2019): its CNN, 1,262,474 parameters on the label path',
    input,
    features: [
      conv(32, 3, 'same'),
      conv(32, 3, 'valid'),
      pool(2),
      dropout(0.25),
      conv(64, 3, 'same'),
      conv(64, 3, 'valid'),
      pool(2),
      dropout(0.25),
      flatten,
      dense(512),
    ],
    label: [dropout(0.5), dense(32), dense(10, 'linear')],
    domain: [dense(512), dense(32), dense(2, 'linear')],
  },
  paper: {
    name: 'paper',
    source:
      'Ganin & Lempitsky 2015 (and JMLR 2016, Fig. 4) MNIST network: conv5x5x32-pool-conv5x5x48-pool; label fc100-fc100-fc10; domain fc100-fc2 (same padding on 32x32 inputs)',
    input,
    features: [conv(32, 5, 'same'), pool(2), conv(48, 5, 'same'), pool(2), flatten],
    label: [dense(100), dense(100), dense(10, 'linear')],
    domain: [dense(100), dense(2, 'linear')],
  },
  'paper-svhn': {
    name: 'paper-svhn',
    source:
      'Ganin & Lempitsky 2015 SVHN network: conv5x5x64-pool3/2-conv5x5x64-pool3/2-conv5x5x128; label fc3072-fc2048-fc10; domain fc1024-fc1024-fc2',
    input,
    features: [conv(64, 5, 'same'), pool(3, 2), conv(64, 5, 'same'), pool(3, 2), conv(128, 5, 'same'), flatten],
    label: [dense(3072), dropout(0.5), dense(2048), dropout(0.5), dense(10, 'linear')],
    domain: [dense(1024), dense(1024), dense(2, 'linear')],
  },
} as const satisfies Record<string, Architecture>;

export type PresetName = keyof typeof PRESETS;

export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export type Group = 'features' | 'label' | 'domain';

/** One trainable tensor and its place in the flat parameter vector. */
export interface ParamSpec {
  readonly name: string;
  readonly group: Group;
  readonly shape: number[];
  readonly offset: number;
  readonly size: number;
  readonly fanIn: number;
  readonly fanOut: number;
  readonly kind: 'kernel' | 'bias';
}

/** Output shape after one layer (HWC or [units]). */
export function layerOutput(layer: Layer, shape: number[]): number[] {
  switch (layer.kind) {
    case 'conv': {
      const [h, w] = shape;
      const out = (n: number) => (layer.padding === 'same' ? n : n - layer.kernel + 1);
      if (out(h) < 1 || out(w) < 1)
        throw new Error(`a ${layer.kernel}x${layer.kernel} valid convolution does not fit a ${h}x${w} input.`);
      return [out(h), out(w), layer.filters];
    }
    case 'maxpool':
      return [
        Math.floor((shape[0] - layer.size) / layer.stride) + 1,
        Math.floor((shape[1] - layer.size) / layer.stride) + 1,
        shape[2],
      ];
    case 'flatten':
      return [shape.reduce((a, b) => a * b, 1)];
    case 'dense':
      if (shape.length !== 1) throw new Error('a dense layer needs a flat input: add a flatten layer before it.');
      return [layer.units];
    case 'dropout':
      return shape;
  }
}

/** Width of the feature layer (the flattened feature maps, or the hidden layer the domain head reads). */
export function featureWidth(arch: Architecture): number {
  return arch.features
    .reduce((shape, layer) => layerOutput(layer, shape), [arch.input.height, arch.input.width, arch.input.channels])
    .reduce((a, b) => a * b, 1);
}

/** The flat parameter layout: features, then label head, then domain head; kernel before bias per layer. */
export function paramSpecs(arch: Architecture): ParamSpec[] {
  const specs: ParamSpec[] = [];
  let offset = 0;
  const add = (name: string, group: Group, shape: number[], fanIn: number, fanOut: number, kind: 'kernel' | 'bias') => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, group, shape, offset, size, fanIn, fanOut, kind });
    offset += size;
  };
  const walk = (group: Group, layers: readonly Layer[], shape: number[]) => {
    layers.forEach((layer, i) => {
      const name = `${group}/${i}_${layer.kind}`;
      if (layer.kind === 'conv') {
        const k = layer.kernel,
          ci = shape[2];
        add(`${name}/kernel`, group, [k, k, ci, layer.filters], k * k * ci, k * k * layer.filters, 'kernel');
        add(`${name}/bias`, group, [layer.filters], 0, 0, 'bias');
      } else if (layer.kind === 'dense') {
        add(`${name}/kernel`, group, [shape[0], layer.units], shape[0], layer.units, 'kernel');
        add(`${name}/bias`, group, [layer.units], 0, 0, 'bias');
      }
      shape = layerOutput(layer, shape);
    });
    return shape;
  };
  const feat = walk('features', arch.features, [arch.input.height, arch.input.width, arch.input.channels]);
  const logits = walk('label', arch.label, feat);
  if (logits.length !== 1 || logits[0] !== 10)
    throw new Error(`${arch.name}: the label head must end in 10 units, got ${logits.join('x')}.`);
  const width = feat.reduce((a, b) => a * b, 1);
  const dom = walk('domain', arch.domain, [width]);
  if (dom.length !== 1 || dom[0] !== 2)
    throw new Error(`${arch.name}: the domain head must end in 2 units, got ${dom.join('x')}.`);
  return specs;
}

export function paramCount(
  specs: readonly ParamSpec[],
  groups: readonly Group[] = ['features', 'label', 'domain'],
): number {
  return specs.filter((s) => groups.includes(s.group)).reduce((a, s) => a + s.size, 0);
}
