export {
  parseCommand,
  helpText,
  positiveInt,
  oneOf,
  nonNegative,
  runMain,
  nxInvocationOption,
  readTokenFile,
  readCaFile,
  type Command,
  type OptionSpec,
} from './cli.ts';
