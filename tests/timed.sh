#!/bin/sh
# timed.sh - make check's LOG_COMPILER: runs one test (its path and arguments) and ends the test's log with
# its wall time, which .ci/run gathers into a table. The test's exit status is kept (77 skip, 99 error).
start=$(date +%s%N 2>/dev/null)
"$@"
rc=$?
end=$(date +%s%N 2>/dev/null)
case "$start$end" in
*[!0-9]* | '') ;; # no nanoseconds from this date(1)
*)
  ms=$(((end - start) / 1000000))
  printf 'test wall time: %d.%03d s (%s)\n' $((ms / 1000)) $((ms % 1000)) "$1"
  ;;
esac
exit $rc
