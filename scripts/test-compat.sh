#!/usr/bin/env bash
# make test-compat: the bastion matrix. Builds OpenSSH 10.5p1 once (cached,
# scripts/compat-build.sh), then runs the Compat suites of the integration
# tests, every scenario on sshd 9.2, sshd 10.5 and Dropbear with ssh 9.2 and
# 10.5. Ends with one plain line for CI:
#   test-compat: N passed, 0 failed (C cases, 6 pairings, S s)
#   test-compat: failed (...)
# and exits non-zero when anything failed. Root (sshd, Dropbear's namespace).
set -uo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
start=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if ! dir=$(scripts/compat-build.sh | tail -n 1) || [ -z "$dir" ]; then
    echo "test-compat: failed (OpenSSH 10.5p1 or Dropbear could not be set up: scripts/compat-build.sh)"
    exit 1
fi
mkdir -p /run/sshd

"$SWIFT" build --build-tests 2>&1 | tee "$log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "test-compat: failed (the build failed)"
    exit 1
fi
WARREN_COMPAT=1 WARREN_COMPAT_OPENSSH="$dir" "$SWIFT" test --skip-build --filter 'WarrenIntegrationTests\.Compat' 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

summary=$(grep -E 'Test run with [0-9]+ tests? in [0-9]+ suites? (passed|failed)' "$log" | tail -n 1 || true)
total=$(sed -nE 's/.*Test run with ([0-9]+) tests?.*/\1/p' <<<"$summary")
issues=$(sed -nE 's/.* with ([0-9]+) issues?.*/\1/p' <<<"$summary")
# A parameterized test counts once; its cases (one per pairing) are what ran.
cases=$(grep -E '^[^ ]+ Test .* (passed|failed) after' "$log" | grep -v ' Test run with ' |
    awk '{ n = 1; if (match($0, / with [0-9]+ test cases /)) { split(substr($0, RSTART), w, " "); n = w[2] } sum += n } END { print sum + 0 }')
took=$((SECONDS - start))
if [ -z "$summary" ]; then
    echo "test-compat: failed (no test summary; swift test exited $status)"
    [ "$status" -ne 0 ] || status=1
elif [ "$status" -eq 0 ] && [ "${total:-0}" -gt 0 ]; then
    echo "test-compat: $total passed, 0 failed ($cases cases, 6 pairings, ${took} s)"
else
    echo "test-compat: failed (${issues:-?} issues in $total tests, ${took} s)"
    [ "$status" -ne 0 ] || status=1
fi
exit "$status"
