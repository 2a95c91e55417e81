/**
 * The config file's text: read with a bound (never more than the limit and one byte, so that
 * `/dev/zero` or an endless pipe is refused, not read until memory runs out) and decoded as
 * strict UTF-8 (an invalid byte is reported at its offset, line and column, never replaced by
 * U+FFFD and written on into the output).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { UserError } from '../../util/errors';

/** Read calls of at most this many bytes for a file of unknown size (a pipe, a device). */
const CHUNK_BYTES = 64 * 1024;

/** Reads `file` (a regular file, a pipe or a device) and decodes it; a UserError naming the file otherwise. */
export function readConfigText(file: string, maxBytes: number): string {
  const bytes = readBounded(file, maxBytes);
  if (!isUtf8(bytes)) {
    const offset = firstInvalidUtf8(bytes);
    const { line, column } = lineAndColumn(bytes, offset);
    throw new UserError([
      `${file}: not UTF-8: invalid byte 0x${bytes[offset].toString(16).padStart(2, '0')} at byte offset ${offset} (line ${line}, column ${column}); save the file as UTF-8`,
    ]);
  }
  return bytes.toString('utf8');
}

function readBounded(file: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw cannotRead(file, error);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new UserError([`${file}: cannot read the config file (it is a directory)`]);
    const tooLarge = () =>
      new UserError([`${file}: the config file is larger than ${maxBytes} bytes (${maxBytes / (1024 * 1024)} MiB), the most a config may be`]);
    // A regular file says how large it is; anything else is read until the limit is passed.
    if (stat.isFile() && stat.size > maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(Math.max(CHUNK_BYTES, stat.size + 1), maxBytes + 1 - total));
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
      total += read;
      if (total > maxBytes) throw tooLarge();
    }
    return Buffer.concat(chunks, total);
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw cannotRead(file, error);
  } finally {
    closeSync(fd);
  }
}

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error',
};

function cannotRead(file: string, error: unknown): UserError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = (code !== undefined ? (REASONS[code] ?? code) : undefined) ?? (error as Error).message;
  return new UserError([`${file}: cannot read the config file (${reason})`]);
}

/**
 * The offset of the first byte that does not start a well-formed UTF-8 sequence (the Unicode
 * standard's table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or of the
 * sequence a truncated one starts. Only called on bytes that isUtf8 refused.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead <= 0x7f) length = 1;
    else if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      // Only the second byte has a narrower range; the others are any continuation byte.
      const [min, max] = k === 1 ? [low, high] : [0x80, 0xbf];
      if (next === undefined || next < min || next > max) return i;
    }
    i += length;
  }
  return bytes.length;
}

/** 1-based line and column (in characters, as the YAML errors count) of a byte offset in valid UTF-8 before it. */
function lineAndColumn(bytes: Buffer, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1 && i < offset; i = bytes.indexOf(0x0a, i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { line, column: bytes.toString('utf8', lineStart, offset).length + 1 };
}
