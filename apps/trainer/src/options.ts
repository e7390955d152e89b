import { DATASETS, type DatasetName } from '@dann/data';
import {
  ADVERSARIAL,
  BACKEND_CHOICES,
  METHODS,
  OPTIMIZERS,
  PRESET_NAMES,
  TRAINING_DEFAULTS,
  type Adversarial,
  type BackendRequest,
  type Method,
  type OptimizerKind,
  type PresetName,
  type Group,
} from '@dann/models';
import { nonNegative, oneOf, positiveInt, type Command } from '@dann/cli';

export const trainCommand = {
  name: 'train',
  summary: 'Trains a DANN (or source-only) digit classifier in one process and writes runs/NAME/.',
  usage: 'npx nx run trainer:train -- --method dann --source synth --target mnist --epochs 5 --out runs/NAME',
  options: {
    method: { type: 'string', description: `${METHODS.join(' | ')}`, default: TRAINING_DEFAULTS.method },
    source: { type: 'string', description: `labelled domain: ${DATASETS.join(' | ')}`, default: 'synth' },
    target: { type: 'string', description: `unlabelled domain: ${DATASETS.join(' | ')}`, default: 'mnist' },
    preset: { type: 'string', description: `network: ${PRESET_NAMES.join(' | ')}`, default: TRAINING_DEFAULTS.preset },
    grey: {
      type: 'boolean',
      description: "the network sees the luminance of its inputs only (recorded in the run's architecture)",
    },
    'domain-head': {
      type: 'string',
      description:
        "hidden widths of the domain head, comma-separated (e.g. 1024,1024; none: a linear head; default: the preset's)",
    },
    'domain-after': {
      type: 'string',
      description:
        'the GRL and domain head read the label path after its first N layers (0: the feature maps, as in the paper)',
      default: '0',
    },
    conditional: {
      type: 'boolean',
      description:
        'the domain head reads features ⊗ class probabilities (CDAN, Long et al. 2018): domains compared class by class',
    },
    'domain-dropout': {
      type: 'string',
      description: 'dropout after each hidden layer of the domain head (needs --domain-head)',
      default: '0',
    },
    epochs: {
      type: 'string',
      description: 'passes over the source training set',
      default: String(TRAINING_DEFAULTS.epochs),
    },
    'batch-size': {
      type: 'string',
      description: 'source images per step (dann adds as many target images)',
      default: String(TRAINING_DEFAULTS.batchSize),
    },
    optimizer: { type: 'string', description: `${OPTIMIZERS.join(' | ')}`, default: TRAINING_DEFAULTS.optimizer },
    lr: { type: 'string', description: 'initial learning rate lr0', default: String(TRAINING_DEFAULTS.lr) },
    'lr-schedule': {
      type: 'string',
      description: 'paper (lr0/(1+10p)^0.75) | constant',
      default: TRAINING_DEFAULTS.lrSchedule,
    },
    momentum: { type: 'string', description: 'SGD momentum', default: String(TRAINING_DEFAULTS.momentum) },
    'lambda-max': {
      type: 'string',
      description: 'ceiling of the GRL weight schedule 2/(1+exp(-gamma p))-1',
      default: String(TRAINING_DEFAULTS.lambdaMax),
    },
    'lambda-gamma': {
      type: 'string',
      description: 'steepness gamma of the GRL schedule',
      default: String(TRAINING_DEFAULTS.lambdaGamma),
    },
    adversarial: {
      type: 'string',
      description: `dann's objective for the features: ${ADVERSARIAL.join(' | ')} (grl: gradient reversal; flip: inverted domain labels; confusion: uniform domain output)`,
      default: 'grl',
    },
    'target-entropy': {
      type: 'string',
      description: 'dann: weight of the entropy of the predictions on the target batch (0 = off)',
      default: '0',
    },
    'domain-weight': {
      type: 'string',
      description: 'weight of the domain loss',
      default: String(TRAINING_DEFAULTS.domainWeight),
    },
    'clip-norm': {
      type: 'string',
      description: 'clip gradients to this global L2 norm (0 = off)',
      default: String(TRAINING_DEFAULTS.clipNorm),
    },
    seed: {
      type: 'string',
      description: 'seed of initialisation, data order and dropout',
      default: String(TRAINING_DEFAULTS.seed),
    },
    limit: { type: 'string', description: 'use only N training images per domain (quick runs)' },
    'eval-limit': { type: 'string', description: 'test images per domain evaluated after each epoch', default: '2000' },
    'val-count': {
      type: 'string',
      description: 'source training images held out for model selection',
      default: '1000',
    },
    'init-from': { type: 'string', description: 'warm start from runs/OTHER (its best checkpoint)' },
    freeze: { type: 'string', description: 'comma-separated groups to keep fixed: features,label' },
    resume: { type: 'boolean', description: 'continue from OUT/checkpoint.bin' },
    backend: { type: 'string', description: `${BACKEND_CHOICES.join(' | ')}`, default: 'auto' },
    gpu: { type: 'string', description: 'GPU index for tfjs-node-gpu (sets CUDA_VISIBLE_DEVICES)' },
    'strict-device': { type: 'boolean', description: 'fail instead of falling back when the GPU cannot be used' },
    'data-dir': { type: 'string', description: 'data folder (default: $DANN_DATA_DIR or <workspace>/data)' },
    out: { type: 'string', description: 'run directory', default: 'runs/dann' },
  },
} as const satisfies Command<Record<string, import('@dann/cli').OptionSpec>>;

export interface TrainOptions {
  method: Method;
  source: DatasetName;
  target: DatasetName;
  preset: PresetName;
  grey: boolean;
  /** Hidden widths of a replacement domain head (empty: linear); absent: the preset's. */
  domainHead?: number[];
  domainDropout: number;
  domainAfter: number;
  conditional: boolean;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerKind;
  lr: number;
  lrSchedule: 'paper' | 'constant';
  momentum: number;
  lambdaMax: number;
  lambdaGamma: number;
  domainWeight: number;
  adversarial: Adversarial;
  targetEntropy: number;
  clipNorm: number;
  seed: number;
  limit?: number;
  evalLimit: number;
  valCount: number;
  initFrom?: string;
  freeze: Group[];
  resume: boolean;
  backend: BackendRequest;
  gpu?: number;
  strictDevice: boolean;
  dataDir?: string;
  out: string;
}

const dataset = (name: string, value: string): DatasetName => oneOf(name, value, DATASETS);

type Raw = {
  [K in keyof typeof trainCommand.options]: (typeof trainCommand.options)[K]['type'] extends 'boolean'
    ? boolean | undefined
    : string | undefined;
};

/** Validates every option into typed values; one sentence per mistake. */
export function toTrainOptions(v: Raw): TrainOptions {
  const lr = nonNegative('lr', v.lr!);
  if (lr === 0) throw new Error('--lr must be greater than 0.');
  const freeze = (v.freeze ?? '')
    .split(',')
    .filter(Boolean)
    .map((g) => oneOf('freeze', g, ['features', 'label', 'domain'] as const));
  const domainDropout = nonNegative('domain-dropout', v['domain-dropout']!);
  if (domainDropout > 0 && v['domain-head'] === undefined)
    throw new Error("--domain-dropout needs --domain-head (the presets' heads have no dropout layers).");
  if (freeze.length && !v['init-from'])
    throw new Error('--freeze needs --init-from: freezing untrained layers makes no sense.');
  return {
    method: oneOf('method', v.method!, METHODS),
    source: dataset('source', v.source!),
    target: dataset('target', v.target!),
    preset: oneOf('preset', v.preset!, PRESET_NAMES),
    grey: v.grey ?? false,
    domainHead:
      v['domain-head'] === undefined
        ? undefined
        : v['domain-head'] === 'none'
          ? []
          : v['domain-head'].split(',').map((u) => positiveInt('domain-head', u.trim())),
    domainDropout,
    domainAfter: nonNegative('domain-after', v['domain-after']!),
    conditional: v.conditional ?? false,
    epochs: positiveInt('epochs', v.epochs!),
    batchSize: positiveInt('batch-size', v['batch-size']!),
    optimizer: oneOf('optimizer', v.optimizer!, OPTIMIZERS),
    lr,
    lrSchedule: oneOf('lr-schedule', v['lr-schedule']!, ['paper', 'constant'] as const),
    momentum: nonNegative('momentum', v.momentum!),
    lambdaMax: nonNegative('lambda-max', v['lambda-max']!),
    lambdaGamma: nonNegative('lambda-gamma', v['lambda-gamma']!),
    domainWeight: nonNegative('domain-weight', v['domain-weight']!),
    adversarial: oneOf('adversarial', v.adversarial!, ADVERSARIAL),
    targetEntropy: nonNegative('target-entropy', v['target-entropy']!),
    clipNorm: nonNegative('clip-norm', v['clip-norm']!),
    seed: positiveInt('seed', v.seed!),
    limit: v.limit === undefined ? undefined : positiveInt('limit', v.limit),
    evalLimit: positiveInt('eval-limit', v['eval-limit']!),
    valCount: nonNegative('val-count', v['val-count']!),
    initFrom: v['init-from'],
    freeze,
    resume: v.resume ?? false,
    backend: oneOf('backend', v.backend!, BACKEND_CHOICES),
    gpu: v.gpu === undefined ? undefined : nonNegative('gpu', v.gpu),
    strictDevice: v['strict-device'] ?? false,
    dataDir: v['data-dir'],
    out: v.out!,
  };
}
