import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../app';

// Placeholder: POST /hooks/amplitude/cohorts/:sourceId arrives with the Amplitude-source issue.
export async function registerAmplitudeHooks(_app: FastifyInstance, _deps: ServerDeps): Promise<void> {}
