// Tiny DOM builder: every string goes in through textContent or setAttribute, never as HTML.

/** Options for {@link el}: class name, text content and attributes. */
export interface ElOptions {
  className?: string;
  text?: string;
  attrs?: Record<string, string>;
}

/** Creates an element with the given class, text and attributes, then appends the children. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  options: ElOptions = {},
  children: readonly Node[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (options.className !== undefined) node.className = options.className;
  if (options.text !== undefined) node.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs ?? {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** Returns the element with this id, or throws when the page lacks it. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`missing #${id}`);
  return node as T;
}
