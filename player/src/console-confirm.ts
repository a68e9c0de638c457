// Inline confirmation for destructive console actions: the button turns into "question — Yes / Cancel".
import { el } from './dom.ts';
import { button } from './console-ui.ts';

/** Makes `trigger` ask `question` in place before running `action`; returns the element to insert instead of it. */
export function confirmable(trigger: HTMLButtonElement, question: string, yesLabel: string, action: () => Promise<void>): HTMLElement {
  const yes = button(yesLabel, 'danger', { 'data-confirm': 'yes' });
  const no = button('Cancel', 'quiet');
  const ask = el('span', { className: 'confirm', attrs: { role: 'group' } }, [
    el('span', { className: 'confirm-question', text: question }),
    yes,
    no,
  ]);
  ask.hidden = true;
  const wrap = el('span', { className: 'confirmable' }, [trigger, ask]);
  const reset = (): void => {
    ask.hidden = true;
    trigger.hidden = false;
  };
  trigger.addEventListener('click', () => {
    trigger.hidden = true;
    ask.hidden = false;
    no.focus();
  });
  no.addEventListener('click', reset);
  yes.addEventListener('click', () => {
    yes.disabled = true;
    no.disabled = true;
    void action().finally(() => {
      yes.disabled = false;
      no.disabled = false;
      reset();
    });
  });
  return wrap;
}
