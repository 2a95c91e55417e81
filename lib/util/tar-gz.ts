/**
 * Reads the regular files of a gzipped tar archive (a packaged Helm chart) into memory, with
 * nothing but node:zlib: ustar headers, their `prefix` field, and the long path names of GNU
 * (`L`) and PAX (`x`) headers, which Go's archive/tar (helm package) writes for long paths.
 */
import { gunzipSync } from 'node:zlib';

const BLOCK = 512;

/** Path in the archive → contents. Throws an Error when the bytes are not a gzipped tar. */
export function readTarGz(archive: Uint8Array): Map<string, Buffer> {
  const tar = gunzipSync(archive);
  const files = new Map<string, Buffer>();
  let offset = 0;
  let longPath: string | undefined;
  while (offset + BLOCK <= tar.length) {
    const header = tar.subarray(offset, offset + BLOCK);
    if (header.every((byte) => byte === 0)) break; // the end-of-archive blocks
    if (!hasValidChecksum(header)) throw new Error(`not a tar archive: bad header checksum at byte ${offset}`);
    const size = octal(header.subarray(124, 136));
    const type = header[156] === 0 ? '0' : String.fromCharCode(header[156]);
    const body = tar.subarray(offset + BLOCK, offset + BLOCK + size);
    if (body.length < size) throw new Error('not a tar archive: truncated');
    offset += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') longPath = text(body);
    else if (type === 'x') longPath = paxPath(body) ?? longPath;
    else if (type !== 'g') {
      const prefix = text(header.subarray(345, 500));
      const name = text(header.subarray(0, 100));
      const path = longPath ?? (prefix ? `${prefix}/${name}` : name);
      longPath = undefined;
      if (type === '0' || type === '7') files.set(path, Buffer.from(body));
    }
  }
  return files;
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces. */
function hasValidChecksum(header: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum === octal(header.subarray(148, 156));
}

function octal(field: Uint8Array): number {
  const digits = text(field).trim();
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** A NUL-terminated field. */
function text(field: Uint8Array): string {
  const end = field.indexOf(0);
  return Buffer.from(end < 0 ? field : field.subarray(0, end)).toString('utf8');
}

/** The `path` record of a PAX extended header (`<length> path=<value>\n` records). */
function paxPath(body: Uint8Array): string | undefined {
  let at = 0;
  const records = Buffer.from(body);
  while (at < records.length) {
    const space = records.indexOf(0x20, at);
    if (space < 0) break;
    const length = parseInt(records.subarray(at, space).toString('ascii'), 10);
    if (!(length > 0)) break;
    const record = records.subarray(space + 1, at + length - 1).toString('utf8');
    if (record.startsWith('path=')) return record.slice('path='.length);
    at += length;
  }
  return undefined;
}
