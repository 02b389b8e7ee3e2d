#!/usr/bin/env bash
# `npm audit --omit=dev` failing on high or critical findings. When the registry's advisory endpoint cannot
# be reached (some mirrors answer 405), the audit did not run: say so loudly instead of passing silently or
# failing the build for a reason unrelated to our dependencies.
set -uo pipefail
output=$(npm audit --omit=dev --audit-level=high 2>&1)
status=$?
printf '%s\n' "$output"
if [ "$status" -ne 0 ] && printf '%s' "$output" | grep -qE 'audit endpoint returned an error|ENOTFOUND|ECONNREFUSED|E405|EAI_AGAIN'; then
  echo "!!! npm audit could NOT run: the advisory endpoint is unreachable from this machine; the audit is not done" >&2
  exit 0
fi
exit "$status"
