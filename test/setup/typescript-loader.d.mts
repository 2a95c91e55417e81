// test/setup/typescript-loader.mjs, which installs itself when imported.

/** Its URL, for `--import`. */
export declare const TYPESCRIPT_LOADER_URL: string;
/** Removes what the tests' caches no longer need; for the main process, before the workers start. */
export declare function pruneTestCaches(): void;
