#!/usr/bin/env bash
# Prints the size of each function's Lambda bootstrap and fails when one is over its budget:
# verify must stay small for cold starts inside WeChat's 5 s; message links the AWS SDK for its
# forward rules (a static-rules message still makes no AWS call) and has the others' budget.
#   scripts/check-bootstrap-sizes.sh <lambda dir> <verify max bytes> <other max bytes>
set -euo pipefail

dir=${1:?lambda output dir, e.g. target/lambda}
webhook_max=${2:?max bytes for verify}
other_max=${3:?max bytes for message, refresh, oauth, worker and api}

over=0
printf '%-8s %12s %12s\n' function bytes budget
for function in verify message refresh oauth worker api; do
  case $function in
    verify) max=$webhook_max ;;
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
