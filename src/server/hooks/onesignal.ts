import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../app';

// Placeholder: POST /hooks/onesignal/events/:streamId arrives with the event-stream issue.
export async function registerOneSignalHooks(_app: FastifyInstance, _deps: ServerDeps): Promise<void> {}
