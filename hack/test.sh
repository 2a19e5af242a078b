#!/usr/bin/env bash
# Runs the test suite and ends with one plain summary line ("N passed, N failed, N skipped").
# Without --unit: the solution, i.e. both test projects (tests/ControlPlane.UnitTests and
# tests/ControlPlane.IntegrationTests); a --filter applies to both, and a failure in either fails the run.
# With --unit (`make unit-test`): the unit project alone, which starts no server and needs no tools.
# Any other argument goes to `dotnet test`.
set -uo pipefail
cd "$(dirname "$0")/.."
target=ControlPlane.sln
if [ "${1:-}" = "--unit" ]; then
  target=tests/ControlPlane.UnitTests
  shift
else
  # The backup tests need s3rver; installing it is cached and idempotent.
  bash hack/install-s3.sh
  # The Rollout successRate tests start a real Prometheus (Debian's package).
  bash hack/install-prometheus.sh
fi
log=$(mktemp)
dotnet test "$target" --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -oE '^\s+Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE '^\s+Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
skipped=$(grep -oE '^\s+Skipped: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
