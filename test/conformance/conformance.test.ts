/**
 * Protocol conformance with the official clients: a real `inferd serve` process on the example
 * repository, driven over HTTP and gRPC by tritonclient (test/conformance/oip_checks.py). Each
 * check of the script is one test here, so a failure names what broke.
 *
 * Needs the compiled CLI (`npm test` builds it) and the Python environment of
 * test/support/python.ts.
 */
import { EXAMPLES } from '../support/paths.js';
import { startChild } from '../support/server.js';
import { describeChecks } from './checks.js';

describeChecks('inferd on the example repository', () => startChild(['--model-repository', EXAMPLES, '--log-level', 'warn']));
