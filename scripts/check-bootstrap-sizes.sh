#!/usr/bin/env bash
# Prints the size of each function's Lambda bootstrap and fails when one is over its budget:
# the webhook functions (verify, message) must stay small for cold starts inside WeChat's 5 s.
#   scripts/check-bootstrap-sizes.sh <lambda dir> <webhook max bytes> <other max bytes>
set -euo pipefail

dir=${1:?lambda output dir, e.g. target/lambda}
webhook_max=${2:?max bytes for verify and message}
other_max=${3:?max bytes for refresh and oauth}

over=0
printf '%-8s %12s %12s\n' function bytes budget
for function in verify message refresh oauth; do
  case $function in
    verify | message) max=$webhook_max ;;
    *) max=$other_max ;;
  esac
  bootstrap=$dir/$function/bootstrap
  if [[ ! -f $bootstrap ]]; then
    echo "missing $bootstrap" >&2
    over=1
    continue
  fi
  size=$(stat -c %s "$bootstrap")
  verdict=""
  if ((size > max)); then
    verdict="  OVER BUDGET"
    over=1
  fi
  printf '%-8s %12d %12d%s\n' "$function" "$size" "$max" "$verdict"
done
exit $over
