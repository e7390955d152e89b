import { existsSync, readFileSync } from 'node:fs';
import { AUGMENTATION_NAMES, DATASETS, type DatasetName } from '@dann/data';
import { nonNegative, oneOf, positiveInt, type OptionSpec } from '@dann/cli';
import { PRESET_NAMES, type Group } from './architecture.ts';
import { METHODS } from './objectives/index.ts';
import { OPTIMIZERS } from './optimizer.ts';
import type { TrainConfig } from './trainer.ts';

/**
 * Every setting of a training run, one table for every front-end (trainer:train, coordinator:serve, npm start):
 * the flags, the keys of a `configs/NAME.json` file, and the defaults, chosen so that a run with nothing else
 * set learns. `npx nx run trainer:train -- --method dann --source synth --target mnist --epochs 2 --limit 8192`
 * reaches source test 0.756 with them (seeds 2 and 3: 0.727, 0.612); with the paper's γ = 10 the domain term
 * took over while the label loss was still on its plateau (0.460, 0.178, 0.303), and with the earlier
 * trainer:train defaults (`seed`, λ to 1, no clipping, lr 5e-4) the run stayed at chance (BENCHMARKS.md,
 * "Defaults that learn").
 */
export const RUN_OPTIONS = {
  config: {
    type: 'string',
    description: 'read the settings from this JSON file (e.g. configs/main.json); flags override it',
  },
  source: { type: 'string', description: `labelled domain: ${DATASETS.join(' | ')}`, default: 'synth' },
  target: { type: 'string', description: `unlabelled domain: ${DATASETS.join(' | ')}`, default: 'mnist' },
  limit: { type: 'string', description: 'use only N training images per domain (quick runs)' },
  'val-count': { type: 'string', description: 'source training images held out for model selection', default: '1000' },
  'eval-limit': { type: 'string', description: 'test images per domain evaluated after each epoch', default: '2000' },
  preset: { type: 'string', description: `network: ${PRESET_NAMES.join(' | ')}`, default: 'paper' },
  method: { type: 'string', description: METHODS.join(' | '), default: 'dann' },
  'lambda-max': {
    type: 'string',
    description: 'dann: ceiling of the GRL weight schedule λmax x (2/(1+exp(-γp))-1)',
    default: '0.1',
  },
  'lambda-gamma': {
    type: 'string',
    description: 'dann: steepness γ of the GRL weight schedule (the paper: 10)',
    default: '3',
  },
  'domain-weight': { type: 'string', description: 'dann: weight of the domain loss', default: '1' },
  'target-entropy': {
    type: 'string',
    description: 'weight of the entropy of the predictions on the target batch (0 = off)',
    default: '0',
  },
  'info-max': {
    type: 'string',
    description:
      'shot: weight of information maximisation on the target batch (mean entropy minus the entropy of the mean prediction)',
    default: '1',
  },
  consistency: {
    type: 'string',
    description: "mean-teacher: weight of the consistency between the student's and the teacher's target predictions",
    default: '3',
  },
  confidence: {
    type: 'string',
    description:
      "mean-teacher: the consistency counts only target images whose teacher's top probability is above this",
    default: '0.95',
  },
  'class-balance': {
    type: 'string',
    description: 'mean-teacher: weight of the class-balance term on the mean target prediction',
    default: '0.3',
  },
  'teacher-decay': {
    type: 'string',
    description: "mean-teacher: decay of the teacher, the moving average of the student's weights",
    default: '0.99',
  },
  augment: {
    type: 'string',
    description:
      "none | affine: each training image randomly rotated (±10°), scaled (±10%), sheared (±0.1), shifted (±2.3 px), with noise | strong: ±15°, shear ±0.3 | colour: affine, and each channel's intensities mapped onto a random [lo, hi] (colour, contrast, polarity)",
    default: 'none',
  },
  optimizer: { type: 'string', description: OPTIMIZERS.join(' | '), default: 'adam' },
  lr: { type: 'string', description: 'initial learning rate lr0', default: '0.001' },
  'lr-schedule': { type: 'string', description: 'paper (lr0/(1+10p)^0.75) | constant', default: 'paper' },
  momentum: { type: 'string', description: 'SGD momentum', default: '0.9' },
  'clip-norm': {
    type: 'string',
    description: 'clip the (averaged) gradient to this global L2 norm (0 = off)',
    default: '5',
  },
  'batch-size': {
    type: 'string',
    description: 'source images per step, split over the trainers (dann adds as many target images)',
    default: '64',
  },
  epochs: { type: 'string', description: 'passes over the source training set', default: '5' },
  seed: { type: 'string', description: 'seed of initialisation, data order and dropout', default: '1' },
  'init-from': { type: 'string', description: 'warm start from runs/OTHER (its best checkpoint)' },
  freeze: { type: 'string', description: 'comma-separated groups to keep fixed: features,label (needs --init-from)' },
  'checkpoint-every': { type: 'string', description: 'steps between checkpoints (and at every epoch)', default: '50' },
  'checkpoint-seconds': {
    type: 'string',
    description: 'also checkpoint when this many seconds passed since the last one (0 = off)',
    default: '60',
  },
} as const satisfies Record<string, OptionSpec>;

export type RunOptionName = Exclude<keyof typeof RUN_OPTIONS, 'config'>;
/** A run's settings by option name, as flags or a config file give them (what config.json records). */
export type RunSettings = Partial<Record<RunOptionName, string | number>>;

/** A training run, typed and validated: what the coordinator plans, trainers compute and checkpoints hold. */
export interface RunConfig {
  readonly data: {
    readonly source: DatasetName;
    readonly target: DatasetName;
    readonly limit?: number;
    /** Source training images held out for model selection (at most a fifth of the source set). */
    readonly valCount: number;
    /** Test images per domain evaluated after each epoch. */
    readonly evalLimit: number;
  };
  readonly train: TrainConfig;
  /** A trained run whose feature extractor and label head start this one. */
  readonly initFrom?: string;
  readonly checkpoint: { readonly every: number; readonly seconds: number };
}

const NAMES = Object.keys(RUN_OPTIONS).filter((k) => k !== 'config') as RunOptionName[];

/** The settings a config file holds: a flat object of option names (or a run's config.json, whose `settings` it reads). */
export function readRunSettings(file: string): RunSettings {
  if (!existsSync(file)) throw new Error(`the config file ${file} does not exist.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`the config file ${file} is not valid JSON (${(err as Error).message}).`);
  }
  const settings = (parsed as { settings?: unknown } | null)?.settings ?? parsed;
  return checkSettings(settings, `the config file ${file}`);
}

/** Checks that `value` is a flat object of known run options with string or number values. */
export function checkSettings(value: unknown, where: string): RunSettings {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${where} must hold a JSON object of run settings, e.g. {"source": "synth", "epochs": 2}.`);
  for (const [key, v] of Object.entries(value)) {
    if (!(NAMES as string[]).includes(key))
      throw new Error(`${where}: "${key}" is not a run setting (settings: ${NAMES.join(', ')}).`);
    if (typeof v !== 'string' && typeof v !== 'number')
      throw new Error(`${where}: "${key}" must be a string or a number, got ${JSON.stringify(v)}.`);
  }
  return value as RunSettings;
}

/** The run settings (and --config) among a command's parsed options: only those on the command line. */
export function runFlags(
  values: Readonly<Record<string, unknown>>,
  given: ReadonlySet<string>,
): RunSettings & { config?: string } {
  const flags: RunSettings & { config?: string } = {};
  for (const name of [...NAMES, 'config' as const])
    if (given.has(name) && typeof values[name] === 'string') flags[name] = values[name] as string;
  return flags;
}

/**
 * The run's settings and its typed config: the defaults, then the config file (`--config`), then the flags the
 * user gave. A bad value is one sentence naming the option (and the file it came from).
 */
export function resolveRun(flags: RunSettings & { config?: string }): { settings: RunSettings; config: RunConfig } {
  const fromFile = flags.config === undefined ? {} : readRunSettings(flags.config);
  const settings: RunSettings = {};
  const origin = new Map<RunOptionName, string>();
  for (const name of NAMES) {
    const spec: OptionSpec = RUN_OPTIONS[name];
    const value = flags[name] ?? fromFile[name] ?? spec.default;
    if (value === undefined) continue;
    settings[name] = value as string | number;
    if (flags[name] === undefined && fromFile[name] !== undefined) origin.set(name, flags.config!);
  }
  try {
    return { settings, config: runConfigOf(settings) };
  } catch (err) {
    const name = NAMES.find((n) => (err as Error).message.startsWith(`--${n} `));
    const file = name && origin.get(name);
    throw file ? new Error(`${file}: ${(err as Error).message}`) : err;
  }
}

/** Validates complete settings (every default filled in) into the typed config; one sentence per mistake. */
export function runConfigOf(s: RunSettings): RunConfig {
  const str = (name: RunOptionName): string => {
    const v = s[name];
    if (v === undefined) throw new Error(`--${name} is missing.`);
    return String(v);
  };
  const opt = (name: RunOptionName) => (s[name] === undefined ? undefined : String(s[name]));
  const number = (name: RunOptionName) => nonNegative(name, str(name));
  const lr = number('lr');
  if (lr === 0) throw new Error('--lr must be greater than 0.');
  const freeze = (opt('freeze') ?? '')
    .split(',')
    .filter(Boolean)
    .map((g) => oneOf('freeze', g.trim(), ['features', 'label', 'domain'] as const)) as Group[];
  const initFrom = opt('init-from');
  if (freeze.length && !initFrom)
    throw new Error('--freeze needs --init-from: freezing untrained layers makes no sense.');
  const method = oneOf('method', str('method'), METHODS);
  if (method === 'shot') {
    // SHOT keeps the source hypothesis (the label head) and adapts the feature extractor to the target.
    if (!initFrom)
      throw new Error('--method shot adapts a trained model: pass --init-from runs/SOURCE (a source-only run).');
    if (!freeze.includes('label')) freeze.push('label');
  }
  const augment = oneOf('augment', str('augment'), ['none', ...AUGMENTATION_NAMES] as const);
  if (method === 'mean-teacher' && augment === 'none')
    throw new Error(
      '--method mean-teacher compares two random changes of each target image: pass --augment affine (or strong, colour).',
    );
  const fraction = (name: RunOptionName) => {
    const v = number(name);
    if (v >= 1) throw new Error(`--${name} must be below 1, got ${v}.`);
    return v;
  };
  const limit = opt('limit');
  const targetEntropy = number('target-entropy');
  return {
    data: {
      source: oneOf('source', str('source'), DATASETS),
      target: oneOf('target', str('target'), DATASETS),
      ...(limit === undefined ? {} : { limit: positiveInt('limit', limit) }),
      valCount: number('val-count'),
      evalLimit: positiveInt('eval-limit', str('eval-limit')),
    },
    train: {
      preset: oneOf('preset', str('preset'), PRESET_NAMES),
      method,
      epochs: positiveInt('epochs', str('epochs')),
      batchSize: positiveInt('batch-size', str('batch-size')),
      optimizer: {
        kind: oneOf('optimizer', str('optimizer'), OPTIMIZERS),
        momentum: number('momentum'),
        clipNorm: number('clip-norm'),
        ...(method === 'mean-teacher' ? { ema: fraction('teacher-decay') } : {}),
      },
      lr,
      lrSchedule: oneOf('lr-schedule', str('lr-schedule'), ['paper', 'constant'] as const),
      lambdaMax: number('lambda-max'),
      lambdaGamma: number('lambda-gamma'),
      domainWeight: number('domain-weight'),
      ...(targetEntropy > 0 ? { targetEntropy } : {}),
      ...(method === 'shot' ? { infoMax: number('info-max') } : {}),
      ...(augment === 'none' ? {} : { augment }),
      ...(method === 'mean-teacher'
        ? {
            meanTeacher: {
              consistency: number('consistency'),
              confidence: fraction('confidence'),
              classBalance: number('class-balance'),
            },
          }
        : {}),
      seed: positiveInt('seed', str('seed')),
      ...(freeze.length ? { frozen: freeze } : {}),
    },
    ...(initFrom === undefined ? {} : { initFrom }),
    checkpoint: {
      every: positiveInt('checkpoint-every', str('checkpoint-every')),
      seconds: number('checkpoint-seconds'),
    },
  };
}
