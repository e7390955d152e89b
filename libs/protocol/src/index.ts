export { parseCommand, helpText, positiveInt, runMain, type Command, type OptionSpec } from './cli.ts';
