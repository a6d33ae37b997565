/**
 * Names users give things (databases, backups) that become file and folder
 * names, Prometheus label values and words in the CLI's output. Letters and
 * digits of any script (the guide's users name things in Chinese), combining
 * marks, "_", "-" and "."; nothing that leaves a folder, hides a file, ends a
 * line or moves a terminal's cursor.
 */
const NAME_CHARACTERS = /^[\p{L}\p{N}\p{M}_.-]+$/u;
/** A file name is at most 255 bytes; the stamp, extensions and temporary suffixes need the rest. */
export const MAX_NAME_BYTES = 150;

/** Why `name` cannot be used, or undefined when it can. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (!NAME_CHARACTERS.test(name)) return 'may only hold letters and digits (of any script), "_", "-" and "." (no spaces, path separators or control characters)';
  if (name === '.' || name === '..') return 'cannot be "." or ".." (it names a folder)';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_NAME_BYTES) return `is ${bytes} bytes long in UTF-8; at most ${MAX_NAME_BYTES} fit in a file name`;
  return undefined;
}
