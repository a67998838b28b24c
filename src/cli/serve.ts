/** `inferd serve`: runs the server until SIGTERM/SIGINT, then drains and exits. */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { InferdServer } from '../server/index.js';
import { createServerLogger } from '../observability/logger.js';
import { configureStorage, prepareModelRepository, storageSettings } from '../storage/open.js';
import { progressLine } from '../storage/progress.js';

interface ServeFlags {
  modelRepository?: string;
  host?: string;
  port?: string;
  grpcPort?: string;
  config?: string;
  logLevel?: string;
  modelControlMode?: string;
  registry?: string;
}

function port(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < -1 || n > 65535) throw new Error(`${flag} must be a port number, got '${value}'`);
  return n;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('serve the models of a model repository over REST and gRPC')
    .option('--model-repository <dir|url>', 'the model repository: a directory (default ./models), s3://bucket/prefix, or an http(s) URL of an artifact or index')
    .option('--host <host>', 'address to listen on (default 0.0.0.0)')
    .option('--port <port>', 'HTTP port (default 8000)')
    .option('--grpc-port <port>', 'gRPC port (default 8001; -1 turns gRPC off)')
    .option('--config <file>', 'configuration file (YAML or JSON)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--registry <url>', 'model registry: sqlite:<file> or postgres://... (default $INFERD_REGISTRY)')
    .option('--model-control-mode <mode>', 'none (load all at start), explicit (by API) or poll (watch the repository)')
    .action(async (flags: ServeFlags) => {
      const overrides: Record<string, unknown> = {};
      const server: Record<string, unknown> = {};
      if (flags.modelRepository) overrides.model_repository = flags.modelRepository;
      if (flags.host) server.host = flags.host;
      const http = port(flags.port, '--port');
      if (http !== undefined) server.http_port = http;
      const grpc = port(flags.grpcPort, '--grpc-port');
      if (grpc !== undefined) server.grpc_port = grpc;
      if (Object.keys(server).length > 0) overrides.server = server;
      if (flags.logLevel) overrides.logging = { level: flags.logLevel };
      if (flags.modelControlMode) overrides.model_control = { mode: flags.modelControlMode };
      if (flags.registry) overrides.registry = flags.registry;
      const loaded = loadConfig({ file: flags.config, overrides });
      const logger = createServerLogger(loaded);
      // Object storage: registry artifacts in S3, and a remote repository mirrored into the cache.
      const storage = storageSettings(loaded, logger);
      const progress = progressLine();
      if (progress) storage.onProgress = progress;
      configureStorage(storage);
      const { config } = await prepareModelRepository(loaded, storage).catch((error: unknown) => {
        logger.error({ err: (error as Error).message }, 'model repository unavailable; not starting');
        throw error;
      });
      const instance = await InferdServer.start(config, logger);

      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          logger.warn({ signal }, 'second signal: exiting without waiting for the drain');
          process.exit(1);
        }
        logger.info({ signal }, 'shutdown requested');
        // The drain runs on the event loop; the handler only starts it (no waiting in the handler).
        void instance.shutdown().then(
          (result) => process.exit(result.clean ? 0 : 1),
          (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
}
