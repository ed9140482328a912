#!/bin/bash
# Runs the tests of the build (dist/) with tap, and ends with one plain line CI can read:
# "tests: N passed, N failed, N skipped". With arguments, tap runs just those; without, every
# test file, in two lanes (see test/light-lane.txt). scripts/test.sh calls it once the machine
# and the build are ready.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(mktemp)
light_out=$(mktemp)
trap 'rm -f "$out" "$light_out"' EXIT
light_rc=0
if [ $# -gt 0 ]; then
    npx --no-install tap "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
else
    # Two lanes: the pure in-process files of test/light-lane.txt run in a second tap process at
    # a lower CPU priority, beside the rest (guests, daemons, the lab), which run one at a time.
    mapfile -t light < <(grep -vE '^\s*(#|$)' test/light-lane.txt | sed -E 's#^(.*)\.ts$#dist/\1.js#')
    for f in "${light[@]}"; do
        [ -f "$f" ] || { echo "test/light-lane.txt names $f, which the build did not make" >&2; exit 1; }
    done
    mapfile -t main < <(find dist/test -name '*.test.js' | sort | grep -vxF -f <(printf '%s\n' "${light[@]}"))
    nice -n 10 npx --no-install tap "${light[@]}" > "$light_out" 2>&1 &
    light_pid=$!
    npx --no-install tap "${main[@]}" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    wait "$light_pid"
    light_rc=$?
    echo "# the light lane (test/light-lane.txt), run beside the above:"
    cat "$light_out"
fi
# One plain closing line that CI can read, from tap's own summaries (both lanes added up).
sum() { { grep -E '^# \{ total: ' "$out" | tail -n 1; grep -E '^# \{ total: ' "$light_out" | tail -n 1; } \
    | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}'; }
if grep -qE '^# \{ total: ' "$out" "$light_out"; then
    echo "tests: $(sum pass) passed, $(sum fail) failed, $(sum skip) skipped"
fi
[ "$rc" -ne 0 ] && exit "$rc"
exit "$light_rc"
