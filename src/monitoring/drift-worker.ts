/** Worker-thread entry of DriftComputePool: one drift computation per task. */
import { computeDrift } from './drift.js';
import type { DriftProfile } from './profile.js';
import type { DriftTask } from './pool.js';

/** Profiles this worker has received, most recent last. */
const profiles = new Map<number, DriftProfile>();
const KEEP = 8;

export default function run(task: DriftTask): unknown {
  let profile = task.profile;
  if (profile) {
    profiles.delete(task.profileId);
    profiles.set(task.profileId, profile);
    if (profiles.size > KEEP) profiles.delete(profiles.keys().next().value!);
  } else {
    profile = profiles.get(task.profileId);
    // the window's columns were transferred here: hand them back with the request for the profile
    if (!profile) return { missingProfile: true, table: task.table };
    profiles.delete(task.profileId);
    profiles.set(task.profileId, profile);
  }
  return { report: computeDrift(profile, task.table, task.options) };
}
