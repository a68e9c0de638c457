// Type declarations for the parts of node-media-server 4.4.3 (CommonJS, untyped) that rtmp-ingest.ts deep-imports.
// Only what we use is declared; see node_modules/node-media-server/src for the implementation.

declare module 'node-media-server/src/core/avpacket.js' {
  /** One demuxed FLV/RTMP media message (flags: 0 audio header, 1 audio, 2 video header, 3 keyframe, 4 inter frame, 5 metadata). */
  class AVPacket {
    codec_id: number;
    codec_type: number;
    duration: number;
    flags: number;
    pts: number;
    dts: number;
    size: number;
    offset: number;
    data: Buffer;
  }
  export = AVPacket;
}

declare module 'node-media-server/src/server/broadcast_server.js' {
  import type AVPacket from 'node-media-server/src/core/avpacket.js';

  /** What BroadcastServer needs from a session that plays (subscribes to) a stream. */
  interface BroadcastSubscriber {
    id: string;
    ip: string;
    protocol: string;
    streamPath: string;
    endTime: number;
    sendBuffer(buffer: Buffer): void;
  }

  /** One stream path: its publisher, its subscribers and its caches (FLV header, metadata, sequence headers, GOP). */
  class BroadcastServer {
    constructor(streamPath: string);
    streamPath: string;
    publisher: { id: string } | null;
    subscribers: Map<string, BroadcastSubscriber>;
    publishGraceMs: number;
    postPlay(session: BroadcastSubscriber): string | null;
    donePlay(session: BroadcastSubscriber): void;
    broadcastMessage(packet: AVPacket): void;
    getPublishStatus(): 'publishing' | 'reconnecting' | 'idle';
    /** Ends the publish now (skipping the reconnect grace), drops caches, unregisters the broadcast if empty. */
    _finishPublish(): void;
  }
  export = BroadcastServer;
}

declare module 'node-media-server/src/protocol/rtmp.js' {
  import type AVPacket from 'node-media-server/src/core/avpacket.js';

  /** The RTMP protocol state machine of one connection. */
  class Rtmp {
    streamId: number;
    onConnectCallback: (req: { app: string; name: string; host: string; query: Record<string, unknown> }) => void;
    onPlayCallback: () => void;
    onPushCallback: () => void;
    onPacketCallback: (packet: AVPacket) => void;
    sendStatusMessage(sid: number, level: string, code: string, description: string): void;
    /** Feeds received bytes to the parser; returns an error message, or throws on some malformed input. */
    parserData(buffer: Buffer): string | null;
    /** Sends NetStream.Publish.Start; called by the publish command's handler before onPushCallback. */
    respondPublish(): void;
    /** The message being received on the current chunk stream (`header.length`: its declared size). */
    parserPacket: { header: { length: number; type: number; cid: number } };
    /** Reads a chunk's message header into parserPacket (looked up or created in inPackets by chunk stream id). */
    packetParse(): void;
    /** Makes parserPacket's payload buffer hold `header.length` bytes, before its first payload byte. */
    packetAlloc(): void;
    /** Handles protocol control messages (Set Chunk Size sets inChunkSize). */
    controlHandler(): void;
    /** One message in reception per chunk stream id. */
    inPackets: Map<number, unknown>;
    /** The peer's chunk size. */
    inChunkSize: number;
  }
  export = Rtmp;
}

declare module 'node-media-server/src/session/rtmp_session.js' {
  import type { Socket } from 'node:net';
  import type AVPacket from 'node-media-server/src/core/avpacket.js';
  import type BroadcastServer from 'node-media-server/src/server/broadcast_server.js';
  import type Rtmp from 'node-media-server/src/protocol/rtmp.js';

  /** One RTMP connection (publisher or player). */
  class RtmpSession {
    constructor(socket: Socket);
    id: string;
    ip: string;
    socket: Socket;
    rtmp: Rtmp;
    broadcast: BroadcastServer;
    isPublisher: boolean;
    streamHost: string;
    streamApp: string;
    streamName: string;
    streamPath: string;
    streamQuery: Record<string, unknown>;
    run(): void;
    onPush(): void;
    onPacket(packet: AVPacket): void;
    close(): void;
  }
  export = RtmpSession;
}

declare module 'node-media-server/src/core/context.js' {
  import type BroadcastServer from 'node-media-server/src/server/broadcast_server.js';

  /** node-media-server's process-wide state (a module-level singleton). */
  const Context: {
    config: Record<string, unknown>;
    sessions: Map<string, unknown>;
    broadcasts: Map<string, BroadcastServer>;
  };
  export = Context;
}

declare module 'node-media-server/src/core/logger.js' {
  /** node-media-server's process-wide logger; `log` writes to console.log unless replaced. */
  const logger: {
    level: string;
    log(message: string, logLevel?: string): void;
  };
  export = logger;
}

declare module 'node-media-server/src/protocol/amf.js' {
  /** AMF0 encoding of RTMP command and data messages (used by the tests' raw RTMP client). */
  const amf: {
    amf0Encode(values: unknown[]): Buffer;
    amf0Decode(buffer: Buffer): unknown[];
  };
  export = amf;
}
