/** The path of test/setup/typescript-loader.mjs, which installs itself when imported. */
export declare const TYPESCRIPT_LOADER: string;
