/** Runs the priority scenario in this process (started without privileges) and prints its report as JSON. */
import { priorityScenario, type ScenarioOptions } from './shadow-priority-scenario.js';

const report = await priorityScenario(JSON.parse(process.argv[2] ?? '{}') as ScenarioOptions);
process.stdout.write(`${JSON.stringify(report)}\n`);
