/** A stand-alone `inferd` built from the real program, to test exit statuses of a process. */
import { main } from '../../src/cli/index.js';

await main(process.argv);
