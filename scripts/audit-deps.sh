#!/usr/bin/env bash
# Checks the production dependencies against the npm advisory database:
#   npm audit --omit=dev --audit-level=high
# and prints one line per high or critical advisory. Advisories listed in
# scripts/audit-exceptions.txt (with a reason and an expiry date) are reported but do not fail.
# Exit status: 0 clean (or only explained advisories), 1 unexplained high/critical advisories,
# 2 the audit could not run (registry unreachable or without the advisory endpoint).
set -euo pipefail
cd "$(dirname "$0")/.."

exceptions="${AUDIT_DEPS_EXCEPTIONS:-scripts/audit-exceptions.txt}"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT

# npm audit exits non-zero when it finds advisories; the JSON says what happened.
# AUDIT_DEPS_REPORT replays a saved `npm audit --json` report instead (offline CI, tests).
if [[ -n "${AUDIT_DEPS_REPORT:-}" ]]; then
  cp "$AUDIT_DEPS_REPORT" "$report"
else
  npm audit --omit=dev --audit-level=high --json >"$report" 2>/dev/null || true
fi

node - "$report" "$exceptions" <<'NODE'
const fs = require('node:fs');
const [reportFile, exceptionsFile] = process.argv.slice(2);
let report;
try {
  report = JSON.parse(fs.readFileSync(reportFile, 'utf8'));
} catch {
  console.error('audit-deps: npm audit produced no readable report; is the registry reachable?');
  process.exit(2);
}
if (report.error || report.statusCode) {
  const why = report.statusCode ? `HTTP ${report.statusCode} from ${report.uri ?? 'the registry'}` : (report.error.summary || report.error.code || 'unknown error');
  console.error(`audit-deps: the advisory check could not run (${why}).`);
  console.error('audit-deps: the configured registry must serve /-/npm/v1/security/advisories/bulk (registry.npmjs.org does); nothing was checked.');
  process.exit(2);
}
const today = new Date().toISOString().slice(0, 10);
const exceptions = new Map();
if (fs.existsSync(exceptionsFile)) {
  for (const [i, raw] of fs.readFileSync(exceptionsFile, 'utf8').split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [advisory, pkg, until, ...reason] = line.split(/\s+/);
    if (!/^GHSA-/.test(advisory ?? '') || !/^\d{4}-\d{2}-\d{2}$/.test(until ?? '') || reason.length === 0) {
      console.error(`audit-deps: ${exceptionsFile}:${i + 1}: expected "GHSA-id package YYYY-MM-DD reason..."`);
      process.exit(2);
    }
    exceptions.set(advisory, { pkg, until, reason: reason.join(' ') });
  }
}
const counts = report.metadata?.vulnerabilities ?? {};
const findings = [];
for (const [name, vuln] of Object.entries(report.vulnerabilities ?? {})) {
  for (const via of vuln.via ?? []) {
    if (typeof via !== 'object') continue; // a transitive pointer; the advisory is listed under its own package
    if (via.severity !== 'high' && via.severity !== 'critical') continue;
    const advisory = /GHSA-[a-z0-9-]+/i.exec(via.url ?? '')?.[0] ?? String(via.source);
    findings.push({ advisory, name, severity: via.severity, title: via.title, range: via.range, fix: vuln.fixAvailable ? 'fix available' : 'no fix yet' });
  }
}
const unexplained = [];
for (const f of findings) {
  const exception = exceptions.get(f.advisory);
  const excused = exception !== undefined && exception.until >= today;
  const tag = excused ? `EXCEPTED until ${exception.until}: ${exception.reason}` : exception ? `EXCEPTION EXPIRED ${exception.until}` : 'UNEXPLAINED';
  console.log(`${f.severity.toUpperCase().padEnd(8)} ${f.advisory.padEnd(20)} ${f.name}@${f.range}  ${f.title} (${f.fix})  [${tag}]`);
  if (!excused) unexplained.push(f);
}
const summary = ['critical', 'high', 'moderate', 'low'].map((s) => `${counts[s] ?? 0} ${s}`).join(', ');
console.log(`audit-deps: production dependencies: ${summary}; ${findings.length} high/critical advisories, ${unexplained.length} unexplained`);
process.exit(unexplained.length > 0 ? 1 : 0);
NODE
