/**
 * A spawner: a small process that runs a test worker's synchronous child processes for it
 * (test/setup/spawners.ts starts one per worker slot, test/setup/spawn-through-spawner.ts
 * connects a worker to its slot's). `node spawner.cjs <requests FIFO> <answers FIFO>`: it waits
 * for a worker to open the FIFOs, reads each request, runs Node.js's own spawnSync with it and
 * answers, until the worker closes the requests FIFO; then waits for the next, until it is
 * stopped, or the vitest process's pipe on its stdin ends (messages.cjs: a length, then JSON).
 * Each answer carries its request's id, so that a worker started on the slot of one killed
 * during a call skips the answer meant for the dead one. Its children are its own, and it is the
 * vitest process's: their CPU time is counted where the run's is.
 *
 * Plain CommonJS with no dependency but messages.cjs, started before any TypeScript is compiled.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { closeSync, openSync } = require('node:fs');
const { Worker } = require('node:worker_threads');
const { readMessage, writeMessage } = require('./messages.cjs');

const [requestsPath, answersPath] = process.argv.slice(2);

// It ends with the vitest process even when that is killed before its teardown: fd 0 is a pipe
// from it, read on a thread of its own while the main thread waits on the FIFOs.
new Worker("const { readSync } = require('node:fs'); try { while (readSync(0, Buffer.alloc(1)) > 0); } catch {} process.kill(process.pid, 'SIGTERM');", { eval: true }).unref();

/** An output as JSON: text as it is, bytes as base64; null and undefined (a process that did not start) kept apart. */
function outputOf(value) {
  if (value === undefined) return { none: true };
  if (value === null) return null;
  return typeof value === 'string' ? { text: value } : { base64: value.toString('base64') };
}

/** Runs one request with spawnSync, in the worker's encoding; what it gave. */
function run(request) {
  const options = { ...request.options };
  if (request.input !== undefined) options.input = Buffer.from(request.input, 'base64');
  const result = spawnSync(request.file, request.args, options);
  const { error } = result;
  return {
    pid: result.pid,
    status: result.status,
    signal: result.signal,
    started: result.output !== null,
    stdout: outputOf(result.stdout),
    stderr: outputOf(result.stderr),
    error: error && { message: error.message, code: error.code, errno: error.errno, syscall: error.syscall, path: error.path, spawnargs: error.spawnargs },
  };
}

/**
 * The answer to one request, with its id: what spawnSync gave, or what it threw (an invalid
 * call, e.g. a null byte in an argument), for the worker to throw alike.
 */
function answer(request) {
  try {
    return { id: request.id, ...run(request) };
  } catch (error) {
    return { id: request.id, thrown: { name: error.name, message: error.message, code: error.code } };
  }
}

for (;;) {
  // In the order the worker opens them: each open waits for the other end.
  const requests = openSync(requestsPath, 'r');
  const answers = openSync(answersPath, 'w');
  try {
    for (let request = readMessage(requests); request !== undefined; request = readMessage(requests)) writeMessage(answers, answer(request));
  } catch (error) {
    // The worker ended while its answer was written (EPIPE): wait for the next one on this slot.
    if (error.code !== 'EPIPE') throw error;
  }
  closeSync(requests);
  closeSync(answers);
}
