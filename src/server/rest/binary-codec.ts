/** Placeholder wiring point for the binary tensor extension; see src/server/binary. */
import type { BinaryCodec } from './app.js';
export const binaryCodec: BinaryCodec | undefined = undefined;
