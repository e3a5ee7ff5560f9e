/**
 * What an id we issued can look like (`src_…`, `str_…`: ids.ts). Checked before an id from a
 * webhook path reaches a query, so a path with NUL or a megabyte of text is a plain 404.
 */
export const ID_IN_PATH = /^[A-Za-z0-9_-]{1,64}$/;
