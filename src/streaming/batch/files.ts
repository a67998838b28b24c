import { open, rename } from 'node:fs/promises';

/** Writes `text` to a temporary file beside `file`, syncs it, then renames it over `file`: readers see the old or the new text, never a part. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}
