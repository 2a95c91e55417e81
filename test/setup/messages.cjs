/**
 * The messages a test worker and its spawner exchange over their FIFOs (spawner.cjs,
 * spawn-through-spawner.ts): a 4-byte little-endian length, then that much JSON. Blocking reads
 * and writes on the FIFOs' file descriptors.
 *
 * Plain CommonJS, as the spawner is.
 */
'use strict';
const { readSync, writeSync } = require('node:fs');

/** Exactly `length` bytes from `fd`, or undefined at the end of the stream. */
function readExactly(fd, length) {
  const buffer = Buffer.alloc(length);
  let offset = 0;
  while (offset < length) {
    const read = readSync(fd, buffer, offset, length - offset, null);
    if (read === 0) return undefined;
    offset += read;
  }
  return buffer;
}

/** The next message from `fd`, parsed, or undefined once the other end has closed. */
function readMessage(fd) {
  const length = readExactly(fd, 4);
  const body = length && readExactly(fd, length.readUInt32LE());
  return body && JSON.parse(body.toString('utf8'));
}

/** Sends `value` to `fd`, whole. */
function writeMessage(fd, value) {
  const body = Buffer.from(JSON.stringify(value));
  const message = Buffer.alloc(4 + body.length);
  message.writeUInt32LE(body.length);
  body.copy(message, 4);
  let offset = 0;
  while (offset < message.length) offset += writeSync(fd, message, offset);
}

module.exports = { readMessage, writeMessage };
