// Cluster-mode routing: each object goes to the replicas of its event's placement, with stickiness so that every
// part and the segment of one msn of one rendition come from one replica, and playlists from the replica that
// served the last one. Failover within a request is the fetch's; this file only orders the replicas and learns
// from which one answered.
import { LRUCache } from 'lru-cache';
import type { HlsObject } from '../lib/hls-path.ts';
import type { PlacementSource } from '../lib/placement/types.ts';
import type { Candidate, FetchRouter, Route } from './failover-fetch.ts';
import type { UpstreamPool } from './upstream-set.ts';

/** Options of {@link createReplicaRouter}. */
export interface ReplicaRouterOptions {
  placements: PlacementSource;
  /** Where the origins' connection pools and health live. */
  pool: Pick<UpstreamPool, 'get' | 'markDown' | 'markUp'>;
  /** Most renditions whose sticky replicas are remembered (least recently used go first). Default 10,000. */
  maxRenditions?: number;
  /** Where an event without a placement (not live) is asked for: the recordings' replay server; none: 404 `not_live`. */
  replay?: () => Candidate | undefined;
}

/** Which replica one rendition of one event sticks to. */
interface Stickiness {
  /** Origin id that served the rendition's last playlist. */
  playlist?: string;
  /** Origin id each recent msn's parts and segment come from (insertion order is msn order). */
  readonly msns: Map<number, string>;
}

/** Most msns remembered per rendition (far more than a live window of parts in flight). */
const MSNS_KEPT = 32;

/** The replica router with a way to forget what it learnt (on stop). */
export interface ReplicaRouter extends FetchRouter<HlsObject> {
  clear(): void;
}

/**
 * Builds the router over `placements`. An object's candidates are its event's origins (labelled by position, 0 =
 * primary), the preferred one first, then the others up in placement order, then those down:
 * - part and segment: the replica of its msn, chosen when the first object of that msn is asked for (the replica of
 *   the rendition's last playlist, else the first up) and moved to whichever replica answers instead;
 * - playlist, master and init: the replica that served the rendition's (or event's) last playlist.
 * A replica no longer in the placement (a new epoch) is simply no longer a candidate.
 */
export function createReplicaRouter(opts: ReplicaRouterOptions): ReplicaRouter {
  const { placements, pool } = opts;
  const sticky = new LRUCache<string, Stickiness>({ max: opts.maxRenditions ?? 10_000 });

  const stickinessOf = (key: string): Stickiness => {
    let st = sticky.get(key);
    if (st === undefined) {
      st = { msns: new Map() };
      sticky.set(key, st);
    }
    return st;
  };

  const setMsn = (st: Stickiness, msn: number, id: string): void => {
    st.msns.delete(msn);
    st.msns.set(msn, id);
    if (st.msns.size > MSNS_KEPT) {
      let oldest = msn;
      for (const k of st.msns.keys()) if (k < oldest) oldest = k;
      st.msns.delete(oldest);
    }
  };

  return {
    async route(obj): Promise<Route | undefined> {
      // A clip is never live: always the recordings.
      const placement = obj.clip ? undefined : await placements.get(obj.eventId);
      if (placement === undefined || placement.origins.length === 0) {
        const replay = opts.replay?.();
        return replay === undefined ? undefined : { candidates: [replay], replicas: false };
      }
      const all: Candidate[] = placement.origins.map((o, i) => ({ upstream: pool.get(o.url), label: `origin-${i}`, id: o.id }));
      const st = stickinessOf(`${obj.eventId}/${obj.rendition ?? ''}`);
      const media = obj.media;
      const msn = media !== undefined && media.kind !== 'init' ? media.msn : undefined;
      const preferred = (msn !== undefined ? st.msns.get(msn) : undefined) ?? st.playlist;

      const candidates: Candidate[] = [];
      const first = all.find((c) => c.id === preferred && !c.upstream.down);
      if (first !== undefined) candidates.push(first);
      for (const c of all) if (c !== first && !c.upstream.down) candidates.push(c);
      for (const c of all) if (c !== first && c.upstream.down) candidates.push(c);
      const head = candidates[0]!;
      // Chosen now, so that the other parts of this msn asked for meanwhile go to the same replica.
      if (msn !== undefined && !st.msns.has(msn)) setMsn(st, msn, head.id!);

      return {
        candidates,
        replicas: true,
        served(c) {
          if (obj.kind === 'playlist' || obj.kind === 'master') st.playlist = c.id;
          else if (msn !== undefined) {
            setMsn(st, msn, c.id!);
            // The replica failed this msn: the rendition's playlists and later msns follow the one that answered.
            if (c !== head) st.playlist = c.id;
          }
        },
      };
    },
    markDown: (u, reason) => pool.markDown(u, reason),
    markUp: (u) => pool.markUp(u),
    clear: () => sticky.clear(),
  };
}
