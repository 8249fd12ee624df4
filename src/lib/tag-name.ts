/**
 * A tag name as Shlink stores and matches it: trimmed, lower-cased, each space a dash, so "Foo Bar" and "foo-bar"
 * are one tag. Shlink's filter chain (shlink-common, InputFactory::tags) also strips HTML tags first; we do not:
 * names are stored and returned as JSON, never rendered as HTML here, and no other field of ours strips markup.
 * Lives in lib because the API's input and the migration that renames stored tags must agree exactly.
 */
export function normalizeTagName(raw: string): string {
  // Only U+0020 becomes a dash, as Shlink's `/ /` pattern: a tab or no-break space inside a name stays.
  return raw.trim().toLowerCase().replaceAll(" ", "-");
}
