/**
 * What an id we issued can look like (`src_…`, `str_…`: ids.ts). Checked before an id from a
 * webhook path reaches a query: a path with NUL or a megabyte of text is a 400, on both
 * databases alike; a well-formed id we do not know is a 404.
 */
export const ID_IN_PATH = /^[A-Za-z0-9_-]{1,64}$/;

export function malformedIdMessage(what: string): string {
  return `the ${what} id in the URL is malformed (letters, digits, "_" and "-", at most 64): check the webhook URL`;
}
