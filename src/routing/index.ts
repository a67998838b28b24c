/**
 * Traffic management: what the server composes.
 *
 *   const traffic = await TrafficService.open(configuredTrafficPolicies(config.models), {
 *     store: TrafficStore.fromRegistry(registry),     // persistence, shared by replicas
 *     runOnVersion: runOnPlane(plane),                 // shadows
 *   });
 *   chain: admission → routingPolicy(traffic) → cache → validation → ... (before version resolution)
 *   control chain: trafficGuardPolicy(traffic) refuses unloading versions a policy needs
 *   routes: mountTrafficRoutes(app, { traffic, served })   or the handlers of admin.ts one by one
 *   metrics: registerTrafficMetrics(metrics.registry, traffic)
 */
export { getAnalysis, getExperiment, getTraffic, listTraffic, postFeedback, putTraffic, type AdminResult, type ServedVersions, type TrafficAdminDeps } from './admin.js';
export { parseTrafficConfig, trafficConfigOf, versionsOf, type TrafficConfig, type TrafficPolicy } from './config.js';
export { configuredTrafficPolicies } from './configured.js';
export { basicStatistics, twoProportionSampleSize, type ExperimentStatistics } from './experiment-statistics.js';
export { mountTrafficRoutes } from './http.js';
export { registerTrafficMetrics } from './metrics.js';
export { runOnPlane, type InferencePlane } from './plane.js';
export { routingPolicy, VARIANT_HEADER } from './policy.js';
export { trafficGuardPolicy } from './guard.js';
export { TrafficService, type TrafficServiceOptions, type TrafficView } from './service.js';
export { TrafficStore } from './store.js';
