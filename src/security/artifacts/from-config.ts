/**
 * The artifact cipher a configuration names, for commands that write to the registry outside
 * the server (`inferd models register`): with `$INFERD_CONFIG` naming a configuration whose
 * `security.artifacts.encryption_key` is set, what they store is encrypted like what the
 * server stores.
 */
import { loadConfig } from '../../config/load.js';
import { readSecret } from '../secrets.js';
import { ArtifactCipher } from './cipher.js';

export function artifactCipherFromConfig(file: string | undefined = process.env['INFERD_CONFIG']): ArtifactCipher | undefined {
  if (file === undefined || file === '') return undefined;
  const source = loadConfig({ file }).security.artifacts.encryption_key;
  return source === undefined ? undefined : new ArtifactCipher(readSecret(source, 'security.artifacts.encryption_key'));
}
