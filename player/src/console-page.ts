// Entry of console.html: session check, login form, and the client-side router (/console, /console/events/<id>).
import { el, byId } from './dom.ts';
import { ConsoleApi, type Operator } from './console-api.ts';
import { button, errorText, field, type ConsoleContext, type Unmount } from './console-ui.ts';
import { mountEventList } from './console-events.ts';
import { mountEventPage } from './console-event.ts';
import './style.css';
import './console.css';

/** How long a toast stays. */
const TOAST_MS = 5000;

/** Parses a console path into a route. */
export function routeOf(pathname: string): { view: 'list' } | { view: 'event'; id: string } {
  const m = /^\/console\/events\/([^/]+)\/?$/.exec(pathname);
  if (m?.[1] !== undefined) return { view: 'event', id: decodeURIComponent(m[1]) };
  return { view: 'list' };
}

/** Starts the console; returns a function that stops it. */
export function startConsole(): () => void {
  const view = byId('view');
  const whoami = byId('whoami');
  const logout = byId<HTMLButtonElement>('logout');
  const toastEl = byId('toast');
  const api = new ConsoleApi();
  let unmount: Unmount | undefined;
  let toastTimer: ReturnType<typeof setTimeout> | undefined;
  let operator: Operator | undefined;

  const toast = (message: string, kind: 'ok' | 'error' = 'ok'): void => {
    toastEl.textContent = message;
    toastEl.dataset.kind = kind;
    toastEl.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (toastEl.hidden = true), TOAST_MS);
  };

  const show = (): void => {
    unmount?.();
    unmount = undefined;
    if (operator === undefined) return showLogin();
    const ctx: ConsoleContext = { api, operator, toast, navigate };
    const route = routeOf(window.location.pathname);
    document.body.dataset.view = route.view;
    unmount = route.view === 'event' ? mountEventPage(view, ctx, route.id) : mountEventList(view, ctx);
  };

  function navigate(path: string): void {
    if (path !== window.location.pathname) history.pushState(null, '', path);
    show();
    window.scrollTo(0, 0);
  }

  function signedIn(op: Operator): void {
    operator = op;
    whoami.textContent = `${op.email} · ${op.role}`;
    logout.hidden = false;
    show();
  }

  function showLogin(): void {
    document.body.dataset.view = 'login';
    whoami.textContent = '';
    logout.hidden = true;
    const email = el('input', {
      className: 'input',
      attrs: { type: 'email', name: 'email', autocomplete: 'username', required: '', autofocus: '' },
    });
    const password = el('input', {
      className: 'input',
      attrs: { type: 'password', name: 'password', autocomplete: 'current-password', required: '' },
    });
    const error = el('p', { className: 'form-error', attrs: { role: 'alert' } });
    const submit = el('button', { className: 'btn btn-primary', text: 'Sign in', attrs: { type: 'submit' } });
    const form = el('form', { className: 'login card' }, [
      el('h1', { text: 'Sign in to the console' }),
      field('E-mail', email),
      field('Password', password),
      error,
      submit,
    ]);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit.disabled = true;
      error.textContent = '';
      api.login(email.value.trim(), password.value).then(
        (op) => signedIn(op),
        (err: unknown) => {
          submit.disabled = false;
          error.textContent = errorText(err);
          password.select();
        },
      );
    });
    view.replaceChildren(form);
    email.focus();
  }

  api.onUnauthenticated = () => {
    if (operator === undefined) return;
    operator = undefined;
    toast('Your session ended: sign in again.', 'error');
    show();
  };

  logout.addEventListener('click', () => {
    void api.logout().then(() => {
      operator = undefined;
      show();
    });
  });
  const onPop = (): void => show();
  window.addEventListener('popstate', onPop);
  // Same-origin links inside the console navigate without a reload.
  const onClick = (e: MouseEvent): void => {
    const a = (e.target as Element | null)?.closest('a');
    if (a === null || a === undefined || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target !== '')
      return;
    const url = new URL(a.href, window.location.href);
    if (url.origin !== window.location.origin || !url.pathname.startsWith('/console')) return;
    e.preventDefault();
    navigate(url.pathname);
  };
  document.addEventListener('click', onClick);

  api.me().then(
    (op) => (op === undefined ? show() : signedIn(op)),
    (err: unknown) => {
      const retry = button('Retry', 'primary');
      retry.addEventListener('click', () => window.location.reload());
      view.replaceChildren(el('p', { className: 'form-error', text: `Cannot load the console: ${errorText(err)}` }), retry);
    },
  );

  return () => {
    unmount?.();
    clearTimeout(toastTimer);
    window.removeEventListener('popstate', onPop);
    document.removeEventListener('click', onClick);
  };
}

startConsole();
