// Structured logging (pino). Every role gets a child logger tagged with its name.
import { pino, type Logger } from 'pino';

export type { Logger };

/** Keys whose values are never written to the log. */
const redactPaths = ['streamKey', 'key', 'password', 'token', 'authorization', '*.streamKey', '*.authorization'];

/** Creates the process logger writing JSON lines to stdout (or `destination`). */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, redact: { paths: redactPaths, censor: '[redacted]' } }, destination ?? process.stdout);
}
