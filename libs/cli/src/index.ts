export {
  parseCommand,
  helpText,
  positiveInt,
  oneOf,
  nonNegative,
  runMain,
  nxInvocationOption,
  readTokenFile,
  type Command,
  type OptionSpec,
} from './cli.ts';
