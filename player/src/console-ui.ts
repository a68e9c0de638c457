// Shared pieces of the console views: the context every view gets, form fields, buttons, time formatting.
import { el } from './dom.ts';
import { ApiError } from './api.ts';
import type { ConsoleApi, Operator } from './console-api.ts';

/** What every console view gets from the shell. */
export interface ConsoleContext {
  api: ConsoleApi;
  operator: Operator;
  /** Shows a short message at the top of the page. */
  toast(message: string, kind?: 'ok' | 'error'): void;
  /** Goes to a console path (history API), e.g. `/console/events/<id>`. */
  navigate(path: string): void;
}

/** A mounted view: call to stop its timers and connections. */
export type Unmount = () => void;

/** A button; `kind` picks its colour. */
export function button(
  text: string,
  kind: 'primary' | 'danger' | 'quiet' | 'plain' = 'plain',
  attrs: Record<string, string> = {},
): HTMLButtonElement {
  return el('button', { className: `btn btn-${kind}`, text, attrs: { type: 'button', ...attrs } });
}

/** A labelled form field wrapping `control`. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLLabelElement {
  const children: Node[] = [el('span', { className: 'field-label', text: label }), control];
  if (hint !== undefined) children.push(el('span', { className: 'field-hint', text: hint }));
  return el('label', { className: 'field' }, children);
}

/** A <select> of `[value, label]` options. */
export function select(options: readonly (readonly [string, string])[], attrs: Record<string, string> = {}): HTMLSelectElement {
  return el(
    'select',
    { className: 'input', attrs },
    options.map(([value, label]) => el('option', { text: label, attrs: { value } })),
  );
}

/** A card with a heading. */
export function card(title: string, children: readonly Node[], className = ''): HTMLElement {
  return el('section', { className: `card ${className}`.trim(), attrs: { 'aria-label': title } }, [
    el('h2', { className: 'card-title', text: title }),
    ...children,
  ]);
}

/** The message of an error for a person. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.status === 0 ? 'Cannot reach the server.' : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Runs `action` with `btn` disabled; reports failures through the toast. Returns the action's result. */
export async function busy<T>(ctx: ConsoleContext, btn: HTMLButtonElement, action: () => Promise<T>): Promise<T | undefined> {
  btn.disabled = true;
  try {
    return await action();
  } catch (err) {
    ctx.toast(errorText(err), 'error');
    return undefined;
  } finally {
    btn.disabled = false;
  }
}

/** `12:03:04` in local time. */
export function clock(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** `1:05:09` or `5:09` for a duration in seconds. */
export function duration(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Status badge text and class of an event status (publishing = a live input is connected). */
export function statusBadge(status: string, publishing?: boolean): HTMLElement {
  const label = status === 'live' ? 'live' : status === 'ended' ? 'ended' : status === 'offline' ? 'offline' : 'not started';
  const b = el('span', { className: `badge badge-${status}`, text: label, attrs: { 'data-status': status } });
  if (publishing === true && status !== 'live') b.textContent = 'connecting';
  return b;
}
