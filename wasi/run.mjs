#!/usr/bin/env node
// run.mjs - run a wasm32-wasi command module under Node's node:wasi (preview 1):
//
//     node wasi/run.mjs [--dir=PATH]... prog.wasm [args...]
//
// ctest uses it as CMAKE_CROSSCOMPILING_EMULATOR (cmake/wasi.cmake). The
// program gets argv = [prog.wasm, args...], the environment, and the current
// directory ("." and its absolute path), /tmp and every --dir as preopened
// directories.
// Node exits with the program's exit code (so 77 reaches ctest's
// SKIP_RETURN_CODE); a trap (abort(), unreachable, out-of-bounds access) or a
// load error prints the error and exits 134, like a native abort.
//
// Node 20 warns "WASI is an experimental feature" on stderr. The warning is
// emitted when node:wasi is first loaded, so the listeners that print
// warnings are removed first and node:wasi is imported dynamically after.

import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';

process.removeAllListeners('warning');
const { WASI } = await import('node:wasi');

const TRAP_EXIT = 134;

function usage() {
  process.stderr.write('usage: node wasi/run.mjs [--dir=PATH]... file.wasm [args...]\n');
  process.exit(2);
}

async function main() {
  let argv = process.argv.slice(2);
  // --dir=PATH (before the file): one more directory the program may open,
  // under its own absolute path (the tests read tests/vectors and the fuzz
  // corpus from the source tree).
  const dirs = [];
  while (argv[0]?.startsWith('--dir=')) dirs.push(path.resolve(argv.shift().slice(6)));
  const [file, ...args] = argv;
  if (!file || file === '-h' || file === '--help') usage();

  const cwd = process.cwd();
  const preopens = { '.': cwd, [cwd]: cwd };
  if (existsSync('/tmp')) preopens['/tmp'] = '/tmp';
  for (const d of dirs) if (existsSync(d)) preopens[d] = d;

  const wasi = new WASI({
    version: 'preview1',
    args: [file, ...args],
    env: { ...process.env },
    preopens,
    // wasi.start returns the code of proc_exit instead of ending Node at once.
    returnOnExit: true,
  });

  let module;
  try {
    // Node's fetch cannot read a path: compile the bytes.
    module = await WebAssembly.compile(await readFile(path.resolve(file)));
  } catch (err) {
    process.stderr.write(`run.mjs: cannot load ${file}: ${err.message}\n`);
    return TRAP_EXIT;
  }
  const exports = WebAssembly.Module.exports(module).map((e) => e.name);
  if (!exports.includes('_start')) {
    process.stderr.write(`run.mjs: ${file} is not a WASI command (no _start export)\n`);
    return TRAP_EXIT;
  }

  try {
    const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
    // Returns main's value, or the code given to exit() (returnOnExit).
    const code = wasi.start(instance);
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    const what = err instanceof WebAssembly.RuntimeError ? 'trap' : 'error';
    process.stderr.write(`run.mjs: ${file}: ${what}: ${err.stack || err}\n`);
    return TRAP_EXIT;
  }
}

process.exitCode = await main();
