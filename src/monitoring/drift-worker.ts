/**
 * Worker-thread entry of DriftComputePool: one drift computation per task.
 *
 * The thread lowers its own scheduling priority (on Linux a thread's nice value is its own), so
 * judging a window takes CPU that serving leaves idle rather than competing with it; a window
 * that closes while the previous one is still being judged is dropped and counted (monitor.ts).
 */
import { setPriority } from 'node:os';
import { readTable } from './dataset.js';
import { computeDrift } from './drift.js';
import { buildDriftProfile, type DriftProfile } from './profile.js';
import type { DriftTask, ProfileTask } from './pool.js';

/** Profiles this worker has received, most recent last. */
const profiles = new Map<number, DriftProfile>();
const KEEP = 8;

try {
  setPriority(19);
} catch {
  // not permitted here: judge at normal priority
}

export default function run(task: DriftTask | ProfileTask): unknown {
  if ('kind' in task) return readTable(task.file).then((table) => buildDriftProfile(table, task.options));
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
