// test/setup/messages.cjs: the messages a test worker and its spawner exchange.

/** The next message from `fd`, parsed, or undefined once the other end has closed. */
export declare function readMessage(fd: number): unknown;
/** Sends `value` to `fd`, whole. */
export declare function writeMessage(fd: number, value: unknown): void;
