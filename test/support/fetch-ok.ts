// Test helper: GETs that must succeed (a non-2xx answer throws, naming the URL and status).

async function ok(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r;
}

/** The body of a successful GET as text. */
export async function fetchText(url: string): Promise<string> {
  return (await ok(url)).text();
}

/** The body of a successful GET as bytes. */
export async function fetchBytes(url: string): Promise<Buffer> {
  return Buffer.from(await (await ok(url)).arrayBuffer());
}

/** The body of `url` once it answers 2xx (polled; undefined meanwhile): for waitFor. */
export async function textWhenReady(url: string): Promise<string | undefined> {
  const r = await fetch(url);
  return r.ok ? r.text() : undefined;
}
