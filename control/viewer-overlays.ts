// What a joining viewer is shown (news flashes, disclaimer, ad break, event status), read from the store, so any
// node answers it: the control plane in all-in-one mode, an edge's gateway in cluster mode.
import type { Db } from '../lib/store/db.ts';
import type { EventService } from './events.ts';
import type { OverlayService } from './overlays.ts';
import { activeAdBreak } from './ad-breaks.ts';
import { remainingSec, type ViewerOverlays } from '../chat/viewer-signals.ts';

/** Where the overlays come from. */
export interface ViewerOverlaySources {
  db: Db;
  events: Pick<EventService, 'byId'>;
  overlays: Pick<OverlayService, 'active'>;
}

/** The overlays a viewer joining `eventId` gets in its welcome; undefined for an unknown event. */
export async function readViewerOverlays(sources: ViewerOverlaySources, eventId: string): Promise<ViewerOverlays | undefined> {
  const [e, active, ad] = await Promise.all([
    sources.events.byId(eventId),
    sources.overlays.active(eventId),
    activeAdBreak(sources.db, eventId),
  ]);
  if (!e) return undefined;
  const now = Date.now();
  return {
    newsFlashes: active.newsFlashes.map((f) => ({ ...f, remainingSec: remainingSec(f.expiresAt, now) })),
    disclaimer: active.disclaimer,
    adBreak: ad
      ? {
          id: ad.id,
          startAt: ad.startAt,
          durationSec: ad.durationSec,
          creativeUrl: ad.creativeUrl,
          remainingSec: remainingSec(ad.startAt + ad.durationSec * 1000, now),
        }
      : null,
    eventStatus: e.status,
    serverTime: now,
  };
}
