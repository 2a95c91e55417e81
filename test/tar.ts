/**
 * Builds small gzipped tar archives for tests (the upstream charts are not in the repository):
 * ustar headers, and a PAX `path` record for paths longer than the 100-byte name field, as Go's
 * archive/tar (helm package) writes them.
 */
import { gzipSync } from 'node:zlib';

const BLOCK = 512;

export function tarGz(files: Readonly<Record<string, string | Buffer>>): Buffer {
  const blocks: Buffer[] = [];
  for (const [path, contents] of Object.entries(files)) {
    const body = Buffer.from(contents);
    if (Buffer.byteLength(path) > 100) {
      const record = paxRecord('path', path);
      blocks.push(header('PaxHeader', record.length, 'x'), padded(record));
    }
    blocks.push(header(path.slice(0, 100), body.length, '0'), padded(body));
  }
  blocks.push(Buffer.alloc(2 * BLOCK));
  return gzipSync(Buffer.concat(blocks));
}

/** A Helm chart archive: `<name>/Chart.yaml` and the given files under `<name>/`. */
export function chartTgz(name: string, version: string, files: Readonly<Record<string, string>> = {}): Buffer {
  const entries = Object.fromEntries(Object.entries(files).map(([path, text]) => [`${name}/${path}`, text]));
  return tarGz({ [`${name}/Chart.yaml`]: `apiVersion: v2\nname: ${name}\nversion: ${version}\n`, ...entries });
}

function header(name: string, size: number, type: string): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write('0000644\0', 100);
  block.write('0000000\0', 108);
  block.write('0000000\0', 116);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  block.write('00000000000\0', 136);
  block.write('        ', 148);
  block.write(type, 156);
  block.write('ustar\0' + '00', 257);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

function padded(body: Buffer): Buffer {
  return Buffer.concat([body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK)]);
}

function paxRecord(key: string, value: string): Buffer {
  const text = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(text);
  length += String(length + String(length).length).length;
  return Buffer.from(`${length}${text}`);
}
