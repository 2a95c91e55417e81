/**
 * The project's root folder (where package.json is), for files the tools read from the
 * repository (imports/, cdk8s.yaml): found from this module's location, which is a source file
 * under lib/ when run from source and a bundle in dist/ when run compiled.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

export function projectRoot(): string {
  if (root === undefined) {
    let dir = __dirname;
    while (!existsSync(join(dir, 'package.json'))) {
      const parent = dirname(dir);
      if (parent === dir) throw new Error(`no package.json above ${__dirname}`);
      dir = parent;
    }
    root = dir;
  }
  return root;
}
