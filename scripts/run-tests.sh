#!/bin/bash
# Runs the tests of the build (dist/) with tap, and ends with one plain line CI can read:
# "tests: N passed, N failed, N skipped". With arguments, tap runs just those; without, every
# test file, in four lanes (test/light-lane.txt, test/lab-lane.txt, test/side-lane.txt, the rest). scripts/test.sh
# calls it once the machine and the build are ready.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=$(mktemp)
light_out=$(mktemp)
side_out=$(mktemp)
lab_out=$(mktemp)
trap 'rm -f "$out" "$light_out" "$lab_out" "$side_out"' EXIT
light_rc=0
side_rc=0
lab_rc=0
now_s() { echo "${EPOCHREALTIME%.*}"; }
# Every node process of the run (tap, the test files, the daemons and CLIs they spawn) preloads
# scripts/tap-no-processinfo.mjs, which keeps tap's @tapjs/processinfo from registering its module
# loader hook (it only serves coverage, which is off): ~0.5-1 s of CPU per test file, and as much
# per controller or agent a test starts. It must come before tap's own --import, hence NODE_OPTIONS.
NODE_OPTIONS="--import=$(node -p "require('node:url').pathToFileURL('scripts/tap-no-processinfo.mjs').href")${NODE_OPTIONS:+ $NODE_OPTIONS}"
export NODE_OPTIONS
# The files a lane list names, as built test files (a name the build did not make stops the run).
lane_files() {
    local f
    while read -r f; do
        f=dist/${f%.ts}.js
        [ -f "$f" ] || { echo "$1 names $f, which the build did not make" >&2; return 1; }
        echo "$f"
    done < <(grep -vE '^\s*(#|$)' "$1")
}
# tap builds its Test class for the configured plugin set (package.json drops @tapjs/typescript)
# the first time it runs after an install. Several tap processes starting at once on a fresh
# install would each rebuild it, deleting the files the others load (CI failed so, every file
# with "Cannot find module .../test-built/..."), so it is built here once, before any lane.
npx --no-install tap build > "$out" 2>&1 || { cat "$out"; echo "tap build failed" >&2; exit 1; }
if [ $# -gt 0 ]; then
    npx --no-install tap "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
else
    # Four lanes, each a tap process running its files one at a time, all four at once:
    # - light (test/light-lane.txt): pure in-process files, at a lower CPU priority;
    # - lab (test/lab-lane.txt): the files that use the multi-host lab, which has its own
    #   libvirtd and sanlock per lab host; HV_TEST_LANE=lab makes the helpers that reach the main
    #   host's daemons refuse (test/lanes.ts);
    # - side (test/side-lane.txt): main-host files that share nothing with the main lane's (their
    #   agents on libvirt's test driver, their own namespaces, loop devices, ports; no sanlock);
    #   they mostly wait, so running them beside the main lane shortens the run;
    # - main: the rest (guests on the main libvirtd, sanlock, loop devices, network namespaces).
    # test/lanes.test.ts checks that every file is in one lane by the lists' rules.
    light=$(lane_files test/light-lane.txt) || exit 1
    lab=$(lane_files test/lab-lane.txt) || exit 1
    side=$(lane_files test/side-lane.txt) || exit 1
    mapfile -t main < <(find dist/test -name '*.test.js' -not -path '*/fixtures/*' | sort | grep -vxF -f <(printf '%s\n' $light $lab $side))
    t0=$(now_s)
    ( nice -n 10 npx --no-install tap $light > "$light_out" 2>&1; rc=$?; echo "# light lane: $(( $(now_s) - t0 )) s" >> "$light_out"; exit $rc ) &
    light_pid=$!
    # HVLAB_KEEP=1: a lab file's labDown leaves the lab hosts running for the next file, whose
    # labUp reuses each one that is exactly as it was made (lab.sh host_clean) and makes the
    # others again; the lane takes the lab down when it ends.
    ( HV_TEST_LANE=lab HVLAB_KEEP=1 npx --no-install tap $lab > "$lab_out" 2>&1; rc=$?
      node --input-type=module -e "const m = await import('./dist/test/lab/multihost/lab.js'); await m.labDown(undefined, { keep: false });" >> "$lab_out" 2>&1
      echo "# lab lane: $(( $(now_s) - t0 )) s" >> "$lab_out"; exit $rc ) &
    lab_pid=$!
    ( npx --no-install tap $side > "$side_out" 2>&1; rc=$?; echo "# side lane: $(( $(now_s) - t0 )) s" >> "$side_out"; exit $rc ) &
    side_pid=$!
    npx --no-install tap "${main[@]}" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    echo "# main lane: $(( $(now_s) - t0 )) s"
    wait "$lab_pid"
    lab_rc=$?
    wait "$light_pid"
    light_rc=$?
    wait "$side_pid"
    side_rc=$?
    echo "# the lab lane (test/lab-lane.txt), run beside the above:"
    cat "$lab_out"
    echo "# the light lane (test/light-lane.txt), run beside the above:"
    cat "$light_out"
    echo "# the side lane (test/side-lane.txt), run beside the above:"
    cat "$side_out"
fi
# One plain closing line that CI can read, from tap's own summaries (the lanes added up).
sum() { for f in "$out" "$light_out" "$lab_out" "$side_out"; do grep -E '^# \{ total: ' "$f" | tail -n 1; done \
    | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}'; }
if grep -qE '^# \{ total: ' "$out" "$light_out" "$lab_out" "$side_out"; then
    echo "tests: $(sum pass) passed, $(sum fail) failed, $(sum skip) skipped"
fi
[ "$rc" -ne 0 ] && exit "$rc"
[ "$lab_rc" -ne 0 ] && exit "$lab_rc"
[ "$side_rc" -ne 0 ] && exit "$side_rc"
exit "$light_rc"
