#!/usr/bin/env node
// First: sets a V8 flag before anything else loads (see the module).
import './startup-tiering.js';
import { Command, Option } from 'commander';
import { parsePid, parseTimeout } from './cli-args.js';
import { addSettingOptions, cliLayer } from './cli-options.js';
import { isCorralError } from './errors.js';
import { EXIT } from './exit-codes.js';
import { corralVersion } from './version.js';

/** A repeatable option's values, in order. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--timeout SECONDS` of the client commands, parsed to milliseconds by the one timeout parser. */
function timeoutOption(description: string, defaultSeconds: number): Option {
  return new Option('--timeout <SECONDS>', description).argParser(parseTimeout).default(defaultSeconds * 1000, String(defaultSeconds));
}

/** Each command's module is loaded only when that command runs, keeping the master small. */
function program(): Command {
  const root = new Command('corral')
    .description('A systemd-native pre-fork HTTP server for Node.js.')
    .version(corralVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)');

  addSettingOptions(root.command('serve', { isDefault: true }))
    .description('run the master: bind, fork workers, supervise (the default command)')
    .argument('[app]', 'module to serve, APP[:EXPORT]')
    .action(async (app: string | undefined, opts: Record<string, unknown>) => (await import('./commands/serve.js')).serve(cliLayer(opts, app)));

  addSettingOptions(root.command('dev'))
    .description('development: one worker, reload on every saved change, errors shown, the last good worker kept serving')
    .argument('[app]', 'module to serve, APP[:EXPORT]')
    .option('--watch <PATH>', 'watch this file or directory instead of the app\'s directory (repeatable); .env and the config file are always watched', collect)
    .option('--ignore <GLOB>', 'also ignore paths matching this glob (repeatable; `*.tmp`, `data/**`); node_modules, .git, build outputs and the logs are ignored already', collect)
    .option('--poll', 'detect changes by polling instead of inotify (network and container mounts)')
    .option('--poll-interval <MS>', 'with --poll: how often to look, in milliseconds (default 500)')
    .option('--debounce <MS>', 'wait this long after the last change before reloading, in milliseconds (default 20)')
    .option('--no-spare', 'do not keep a warm spare worker process (each reload then starts Node afresh)')
    .action(async (app: string | undefined, opts: Record<string, unknown>) => (await import('./commands/dev.js')).dev(cliLayer(opts, app), opts));

  addSettingOptions(root.command('check'))
    .description('validate settings, load the app once, check binds and log paths')
    .argument('[app]', 'module to serve, APP[:EXPORT]')
    .action(async (app: string | undefined, opts: Record<string, unknown>) => (await import('./commands/check.js')).check(cliLayer(opts, app)));

  addSettingOptions(root.command('print-config'))
    .description('print every effective setting with the layer it came from')
    .argument('[app]', 'module to serve, APP[:EXPORT]')
    .option('--json', 'print JSON instead of a table')
    .action(async (app: string | undefined, opts: Record<string, unknown>) => (await import('./commands/print-config.js')).printConfig(cliLayer(opts, app), opts.json === true));

  root.command('reload')
    .description('send HUP to a master; with --wait, return once the new generation serves (0) or the reload failed (1)')
    .argument('<pid>', 'PID of the corral master ($MAINPID in a unit)', parsePid)
    .option('--wait', 'wait for the reload to finish')
    .addOption(timeoutOption('with --wait: give up after this long', 120))
    .action(async (pid: number, opts: { wait?: boolean; timeout: number }) => (await import('./commands/reload.js')).reloadCommand(pid, opts));

  root.command('status')
    .description('the live picture: master, listeners and their accept queues, every worker')
    .argument('[pid]', 'PID of the corral master; without it, the only master in $RUNTIME_DIRECTORY (or /run/corral/NAME with --name)', parsePid)
    .option('--json', 'print one JSON document instead of tables')
    .option('--name <NAME>', 'the app name an installed service runs as (corral@NAME)')
    .addOption(timeoutOption('give up after this long', 5))
    .action(async (pid: number | undefined, opts: { json?: boolean; name?: string; timeout: number }) => (await import('./commands/status.js')).statusCommand(pid, opts));

  root.command('health')
    .description('exit 0 when the metrics listener answers 200 on /livez (with --ready: /readyz); for Docker HEALTHCHECK and scripts')
    .argument('[address]', 'HOST:PORT or unix:/path of the metrics listener (default: metrics-bind, CORRAL_METRICS_BIND)')
    .option('--ready', 'ask /readyz instead of /livez')
    .option('--config <PATH>', 'config file to read metrics-bind from')
    .addOption(timeoutOption('give up after this long', 5))
    .action(async (address: string | undefined, opts: { ready?: boolean; config?: string; timeout: number }) => (await import('./commands/health.js')).healthCommand(address, opts));

  return root;
}

async function main(): Promise<void> {
  try {
    await program().parseAsync(process.argv);
  } catch (err) {
    if (isCorralError(err)) {
      process.stderr.write(`corral: error ${err.code}: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`corral: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.UNEXPECTED;
    }
  }
}

void main();
