/** The binary tensor extension for the REST door (implementation in src/server/binary). */
export { binaryCodec } from '../binary/rest.js';
