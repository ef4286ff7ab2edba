#!/bin/sh
# expect_failure_fast.sh LIMIT COMMAND...: passes if COMMAND exits non-zero, by itself, within LIMIT s.
limit=$1; shift
start=$(date +%s)
timeout -s KILL "$limit" "$@"
rc=$?
elapsed=$(( $(date +%s) - start ))
if [ "$rc" -eq 137 ] && [ "$elapsed" -ge "$limit" ]; then
  echo "FAILED: the job hung and was killed after ${limit}s"; exit 1
fi
if [ "$rc" -eq 0 ]; then echo "FAILED: the job succeeded although one rank failed"; exit 1; fi
echo "ok: the job ended with status $rc after ${elapsed}s"
exit 0
