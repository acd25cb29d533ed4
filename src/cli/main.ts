// The podmesh command line: the only module that reads process.argv, prints to the real streams and sets the exit code.
import { runCli } from './run.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  env: process.env,
  cwd: process.cwd(),
  tty: process.stdout.isTTY === true,
});
