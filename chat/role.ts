// Composes live interaction for one process: realtime backend (Redis or in-process), chat store, viewer tokens,
// moderation and the WebSocket gateway. The chat REST routes (chat/routes.ts) are registered by the control
// plane from these pieces; cluster roles take the pieces they need.
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { TrustedProxies } from '../lib/client-address.ts';
import type { Registry } from '../lib/metrics.ts';
import type { Db } from '../lib/store/db.ts';
import type { Service } from '../lib/lifecycle.ts';
import { CommentStore } from './comments.ts';
import { ModerationService, parseModerationAction } from './moderation.ts';
import { ViewerTokens, loadTokenSecret } from './viewer-tokens.ts';
import { createRealtimeBackend, type RealtimeBackend } from './backend.ts';
import { createWsGateway, type WsGateway, type WsGatewayDeps } from './gateway.ts';

/** Live interaction for one process. Building it starts nothing; start() brings up the bus, then the gateway. */
export interface ChatRole extends Service {
  gateway: WsGateway;
  backend: RealtimeBackend;
  /** The chat store (comments, likes, bans, settings). */
  comments: CommentStore;
  moderation: ModerationService;
  tokens: ViewerTokens;
  /** Starts the realtime backend (connects to Redis in cluster mode), then the gateway's timers and bus watch. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops the gateway (acknowledged comments delivered, clients closed), then the backend. Idempotent. */
  stop(): Promise<void>;
}

/** Builds the chat pieces from config (Redis when `config.redisUrl` is set, in-process otherwise). */
export function createChatRole(deps: {
  config: Config;
  logger: Logger;
  registry: Registry;
  db: Db;
  /** The process's trusted-proxy rule (from `config.trustedProxies`): whose X-Forwarded-For names the viewer. */
  trustedProxies: TrustedProxies;
  eventExists(eventId: string): Promise<boolean>;
  /** Active overlays for joining viewers (the control plane's). */
  overlays?: WsGatewayDeps['overlays'];
  /** Receives per-event viewer totals (the control plane's viewer history). */
  onViewerCount?: WsGatewayDeps['onViewerCount'];
}): ChatRole {
  const { config, logger } = deps;
  const { redisUrl } = config;
  const backend = createRealtimeBackend({ redisUrl, mode: config.busChannelMode, logger: logger.child({ part: 'bus' }) });
  const comments = new CommentStore(deps.db);
  const tokens = new ViewerTokens(() => loadTokenSecret(config.dataDir, config.viewerTokenSecret), config.viewerTokenTtlSec);
  const moderation = new ModerationService(comments, backend.bus);
  const gateway = createWsGateway({
    settings: config,
    logger: logger.child({ part: 'ws' }),
    registry: deps.registry,
    bus: backend.bus,
    presence: backend.presence,
    limiter: backend.limiter,
    trustedProxies: deps.trustedProxies,
    tokens,
    store: comments,
    eventExists: deps.eventExists,
    moderate: (eventId, raw, by) => moderation.apply(eventId, parseModerationAction(raw), by.id),
    overlays: deps.overlays,
    onViewerCount: deps.onViewerCount,
  });
  let stopping: Promise<void> | undefined;
  return {
    gateway,
    backend,
    comments,
    moderation,
    tokens,
    async start(signal) {
      // The secret may be generated into the data dir: a file written at start, not when the role is built.
      tokens.load();
      await backend.start(signal);
      // A gateway that cannot start must not leave the bus connected.
      await gateway.start(signal).catch(async (err: unknown) => {
        await backend.stop();
        throw err;
      });
      logger.info({ bus: backend.bus.kind, mode: redisUrl ? config.busChannelMode : 'memory' }, 'chat gateway ready');
    },
    stop() {
      stopping ??= (async () => {
        await gateway.stop();
        await backend.stop();
      })();
      return stopping;
    },
  };
}
