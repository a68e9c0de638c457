// The event fields the console's create form and the event page's Settings card share: title, description,
// visibility, Record switch, DVR window and latency tuning (controls, labels and hints in one place).
import { el } from './dom.ts';
import { LATENCY_TUNING_OPTIONS, describeLatencyTuning, type ConsoleEvent, type EventSettings, type LatencyTuning } from './console-api.ts';
import { field, select } from './console-ui.ts';

/** The shared controls: `fields` to place in a form, `read()` for their values. */
export interface EventFields {
  title: HTMLInputElement;
  description: HTMLTextAreaElement;
  visibility: HTMLSelectElement;
  record: HTMLInputElement;
  dvr: HTMLInputElement;
  tuning: HTMLSelectElement;
  /** Labelled fields in form order. */
  fields: HTMLElement[];
  /** The values entered (an empty DVR box or the "server settings" tuning: null). */
  read(): EventSettings;
}

/** The `part,gop` value of a tuning in LATENCY_TUNING_OPTIONS ('' for the server's settings). */
export function latencyTuningValue(t: LatencyTuning): string {
  return t.partTargetSec === null && t.gopSec === null ? '' : `${t.partTargetSec ?? ''},${t.gopSec ?? ''}`;
}

/** Builds the fields, empty (create form defaults: public, recorded) or filled from `event`. */
export function eventFields(event?: ConsoleEvent): EventFields {
  const title = el('input', {
    className: 'input',
    attrs: { name: 'title', required: '', maxlength: '200', placeholder: 'e.g. Town hall, 14 May' },
  });
  const description = el('textarea', {
    className: 'input',
    attrs: { name: 'description', rows: '2', maxlength: '5000', placeholder: 'Shown under the player' },
  });
  const visibility = select(
    [
      ['public', 'Public — listed on the home page'],
      ['unlisted', 'Unlisted — only with the link'],
    ],
    { name: 'visibility' },
  );
  // The event's `recording` field: on (the default) keeps a recording for the replay, clips and the MP4 download.
  const record = el('input', { attrs: { name: 'recording', type: 'checkbox', role: 'switch', checked: '' } });
  record.checked = true;
  const recordField = el('label', { className: 'field field-switch' }, [
    record,
    el('span', { className: 'field-label', text: 'Record' }),
    el('span', { className: 'field-hint', text: 'Keep a recording: the replay at the same link, clips and an MP4 download.' }),
  ]);
  const dvr = el('input', {
    className: 'input',
    attrs: { name: 'dvrWindowSec', type: 'number', min: '0', max: '86400', step: '1', placeholder: 'server default' },
  });
  const tuning = select(LATENCY_TUNING_OPTIONS, { name: 'latencyTuning' });
  if (event) {
    title.value = event.title;
    description.value = event.description;
    visibility.value = event.visibility;
    record.checked = event.recording !== false;
    dvr.value = event.dvrWindowSec === null ? '' : String(event.dvrWindowSec);
    // A tuning set through the API that the menu does not offer is shown as its own choice.
    const current = latencyTuningValue(event);
    if (!LATENCY_TUNING_OPTIONS.some(([v]) => v === current)) {
      tuning.append(el('option', { text: describeLatencyTuning(event), attrs: { value: current } }));
    }
    tuning.value = current;
  }
  const read = (): EventSettings => {
    const [part, gop] = tuning.value === '' ? [] : tuning.value.split(',');
    const num = (s: string | undefined): number | null => (s === undefined || s === '' ? null : Number(s));
    return {
      title: title.value.trim(),
      description: description.value,
      visibility: visibility.value as 'public' | 'unlisted',
      recording: record.checked,
      dvrWindowSec: num(dvr.value.trim()),
      partTargetSec: num(part),
      gopSec: num(gop),
    };
  };
  return {
    title,
    description,
    visibility,
    record,
    dvr,
    tuning,
    fields: [
      field('Title', title),
      field('Description', description),
      field('Visibility', visibility),
      recordField,
      field('DVR rewind (seconds)', dvr, 'How far viewers can seek back while live; 0 turns it off. Needs recording on.'),
      field(
        'Latency tuning',
        tuning,
        'Longer LL-HLS parts mean fewer requests per viewer, a longer keyframe interval (GOP) less bitrate; both add latency.',
      ),
    ],
    read,
  };
}

/** The settings of `next` that differ from `event`'s (a PATCH body; {} when nothing changed). */
export function changedSettings(event: ConsoleEvent, next: EventSettings): Partial<EventSettings> {
  const out: Partial<EventSettings> = {};
  if (next.title !== event.title) out.title = next.title;
  if (next.description !== event.description) out.description = next.description;
  if (next.visibility !== event.visibility) out.visibility = next.visibility;
  // A null recording field records by default, as the switch shows.
  if (next.recording !== (event.recording !== false)) out.recording = next.recording;
  if (next.dvrWindowSec !== event.dvrWindowSec) out.dvrWindowSec = next.dvrWindowSec;
  if (next.partTargetSec !== event.partTargetSec || next.gopSec !== event.gopSec) {
    out.partTargetSec = next.partTargetSec;
    out.gopSec = next.gopSec;
  }
  return out;
}
