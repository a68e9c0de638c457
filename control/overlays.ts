// News flashes (shown for a duration) and disclaimers (until cleared): stored, signalled to viewers at once,
// and listed while active so that viewers who join later see them too.
import { randomBytes } from 'node:crypto';
import type { Db } from '../lib/store/db.ts';
import type { OverlaysTable } from '../lib/store/schema.ts';
import type { DisclaimerWire, NewsFlashWire, ViewerSignals } from '../chat/viewer-signals.ts';

/** Severity of a news flash or disclaimer. */
export type Severity = OverlaysTable['severity'];

/** What is on screen for an event right now. */
export interface ActiveOverlays {
  newsFlashes: NewsFlashWire[];
  disclaimer: DisclaimerWire | null;
}

const flashWire = (r: OverlaysTable): NewsFlashWire => ({
  id: r.id,
  text: r.text,
  severity: r.severity,
  at: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});
const disclaimerWire = (r: OverlaysTable): DisclaimerWire => ({ id: r.id, text: r.text, severity: r.severity, at: Number(r.created_at) });

/** News flashes and disclaimers over the store. */
export class OverlayService {
  constructor(
    private readonly db: Db,
    private readonly signals: ViewerSignals,
    private readonly now: () => number = Date.now,
  ) {}

  /** Posts a news flash shown for `durationSec`; viewers get it at once. */
  async postNewsFlash(
    eventId: string,
    input: { text: string; severity: Severity; durationSec: number },
    by?: string,
  ): Promise<NewsFlashWire> {
    const at = this.now();
    const row: OverlaysTable = {
      id: 'nf_' + randomBytes(8).toString('base64url'),
      event_id: eventId,
      kind: 'flash',
      text: input.text,
      severity: input.severity,
      created_at: at,
      expires_at: at + Math.round(input.durationSec * 1000),
      cleared_at: null,
      created_by: by ?? null,
    };
    await this.db.insertInto('overlays').values(row).execute();
    const flash = flashWire(row);
    await this.signals.send(eventId, { signal: 'news_flash', flash });
    return flash;
  }

  /** Takes a news flash down early; false if unknown or no longer active. */
  async clearNewsFlash(eventId: string, id: string): Promise<boolean> {
    const now = this.now();
    const r = await this.db
      .updateTable('overlays')
      .set({ cleared_at: now })
      .where('id', '=', id)
      .where('event_id', '=', eventId)
      .where('kind', '=', 'flash')
      .where('cleared_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    await this.signals.send(eventId, { signal: 'news_flash_cleared', id });
    return true;
  }

  /** Sets the disclaimer (replacing any other); it stays until cleared. */
  async setDisclaimer(eventId: string, input: { text: string; severity: Severity }, by?: string): Promise<DisclaimerWire> {
    const at = this.now();
    const row: OverlaysTable = {
      id: 'dc_' + randomBytes(8).toString('base64url'),
      event_id: eventId,
      kind: 'disclaimer',
      text: input.text,
      severity: input.severity,
      created_at: at,
      expires_at: null,
      cleared_at: null,
      created_by: by ?? null,
    };
    await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('overlays')
        .set({ cleared_at: at })
        .where('event_id', '=', eventId)
        .where('kind', '=', 'disclaimer')
        .where('cleared_at', 'is', null)
        .execute();
      await tx.insertInto('overlays').values(row).execute();
    });
    const disclaimer = disclaimerWire(row);
    await this.signals.send(eventId, { signal: 'disclaimer', disclaimer });
    return disclaimer;
  }

  /** Clears the disclaimer; false if there was none. */
  async clearDisclaimer(eventId: string): Promise<boolean> {
    const r = await this.db
      .updateTable('overlays')
      .set({ cleared_at: this.now() })
      .where('event_id', '=', eventId)
      .where('kind', '=', 'disclaimer')
      .where('cleared_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    await this.signals.send(eventId, { signal: 'disclaimer', disclaimer: null });
    return true;
  }

  /** What viewers should see now (for late joiners). */
  async active(eventId: string): Promise<ActiveOverlays> {
    const now = this.now();
    const rows = await this.db
      .selectFrom('overlays')
      .selectAll()
      .where('event_id', '=', eventId)
      .where('cleared_at', 'is', null)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
      .orderBy('created_at', 'asc')
      .execute();
    const disclaimer = rows.filter((r) => r.kind === 'disclaimer').at(-1);
    return {
      newsFlashes: rows.filter((r) => r.kind === 'flash').map(flashWire),
      disclaimer: disclaimer ? disclaimerWire(disclaimer) : null,
    };
  }
}
