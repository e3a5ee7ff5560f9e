import { AmpError } from '../errors';
import { amplitudeDefinition } from './amplitude/definition';
import { oneSignalDefinition } from './onesignal/definition';

/**
 * Every connector ampsignal knows, by id. Add a connector by importing its definition here;
 * the UI catalog page and the CLI read this object.
 */
export const catalog = {
  onesignal: oneSignalDefinition,
  amplitude: amplitudeDefinition,
} as const;

export type ConnectorId = keyof typeof catalog;

export function getConnector<K extends ConnectorId>(id: K): (typeof catalog)[K];
export function getConnector(id: string): (typeof catalog)[ConnectorId];
export function getConnector(id: string): (typeof catalog)[ConnectorId] {
  if (!Object.hasOwn(catalog, id)) {
    throw new AmpError('not_found', `unknown connector "${id}" (known: ${Object.keys(catalog).join(', ')})`);
  }
  return catalog[id as ConnectorId];
}
