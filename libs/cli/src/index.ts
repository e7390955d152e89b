export {
  parseCommand,
  helpText,
  positiveInt,
  oneOf,
  nonNegative,
  runMain,
  nxInvocationOption,
  readTokenFile,
  presentedToken,
  readCaFile,
  type Command,
  type OptionSpec,
} from './cli.ts';
