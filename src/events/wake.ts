import { JOB_KEYS, type JobQueue, QUEUES, TASKS } from '../jobs/port';

/**
 * Wakes a stream's forwarder after events are stored, without adding a job per request under
 * load: at most one `stream.forward` add per stream per interval. The add that follows a burst
 * is trailing, so events stored after a job already started are never left waiting.
 */
export const WAKE_INTERVAL_MS = 100;

export interface Waker {
  wake(streamId: string): void;
  close(): void;
}

export function createWaker(jobs: JobQueue | undefined, onError: (e: unknown) => void = () => {}): Waker {
  const lastAdd = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();
  const add = (streamId: string) => {
    lastAdd.set(streamId, Date.now());
    jobs!
      .add(TASKS.forward, { streamId }, { queue: QUEUES.stream(streamId), jobKey: JOB_KEYS.forward(streamId) })
      .catch(onError);
  };
  return {
    wake(streamId) {
      if (!jobs || timers.has(streamId)) return;
      const since = Date.now() - (lastAdd.get(streamId) ?? 0);
      if (since >= WAKE_INTERVAL_MS) return add(streamId);
      const t = setTimeout(() => {
        timers.delete(streamId);
        add(streamId);
      }, WAKE_INTERVAL_MS - since);
      t.unref();
      timers.set(streamId, t);
    },
    close() {
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
