/** Observability: metrics, SLO rules, dashboards, tracing and logs. */
export * from './config.js';
export * from './metrics.js';
export * from './rules.js';
export * from './dashboard.js';
export * from './tracing.js';
export * from './logger.js';
