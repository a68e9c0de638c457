// In-process bus (all-in-one default): delivers on a later microtask, like a network bus would, in publish order.
import { BusUnavailableError, createStateListeners, type Bus, type Unsubscribe } from './bus.ts';

/** Creates an in-process bus. */
export function createMemoryBus(): Bus {
  const channels = new Map<string, Set<(message: string) => void>>();
  const state = createStateListeners();
  let running = true;
  return {
    kind: 'memory',
    async publish(channel, message) {
      if (!running) throw new BusUnavailableError('bus stopped');
      const handlers = channels.get(channel);
      if (!handlers) return;
      for (const h of [...handlers]) queueMicrotask(() => h(message));
    },
    async subscribe(channel, handler): Promise<Unsubscribe> {
      let set = channels.get(channel);
      if (!set) channels.set(channel, (set = new Set()));
      // Wrap so that subscribing the same function twice gives two independent subscriptions.
      const h = (m: string) => handler(m);
      set.add(h);
      return async () => {
        set.delete(h);
        if (set.size === 0 && channels.get(channel) === set) channels.delete(channel);
      };
    },
    isUp: () => running,
    onStateChange: (l) => state.add(l),
    async start() {
      running = true;
    },
    async stop() {
      running = false;
      channels.clear();
    },
  };
}
