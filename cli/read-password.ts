// Reads a password for the CLI: a hidden prompt on a terminal, otherwise the first line of stdin.
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/** Prompts (input not echoed) when `input` is a TTY; otherwise reads stdin up to the first newline. */
export async function readPassword(
  prompt: string,
  input: Readable & { isTTY?: boolean } = process.stdin,
  output: Writable = process.stderr,
): Promise<string> {
  if (input.isTTY) {
    const rl = createInterface({ input, output, terminal: true });
    // Echo the prompt but nothing that is typed.
    let prompting = true;
    (rl as unknown as { _writeToOutput(s: string): void })._writeToOutput = (s: string) => {
      if (prompting) output.write(s);
    };
    try {
      return await new Promise<string>((resolve) => {
        rl.question(prompt, (answer) => {
          prompting = true;
          output.write('\n');
          resolve(answer);
        });
        prompting = false; // the prompt is out; hide the typing
      });
    } finally {
      rl.close();
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}
