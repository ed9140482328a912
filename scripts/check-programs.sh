#!/bin/bash
# Checks that every program on test/lab/programs.tsv resolves: a name on PATH (with /usr/sbin and
# /sbin added, as the agent looks), or an absolute path (a glob: any match). The first step of
# `npm test` after setup, so that a missing program stops the run at once, naming its package,
# instead of failing tests far from the cause. Env: HOSTVISOR_PROGRAMS (another list, for its test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LIST=${HOSTVISOR_PROGRAMS:-test/lab/programs.tsv}
PATH=$PATH:/usr/sbin:/sbin

missing=0 rows=0 packages=()
while IFS=$'\t' read -r program package used_by; do
    [[ -z $program || $program == '#'* ]] && continue
    rows=$((rows + 1))
    if [[ $program == /* ]]; then
        compgen -G "$program" >/dev/null && continue
    else
        command -v "$program" >/dev/null && continue
    fi
    missing=$((missing + 1))
    if [ "$package" = - ]; then
        echo "programs: MISSING $program (a prerequisite, not installed by setup.sh; used by: $used_by)" >&2
    else
        echo "programs: MISSING $program from the Debian package $package (used by: $used_by)" >&2
        packages+=("$package")
    fi
done < "$LIST"

if [ $missing -gt 0 ]; then
    msg="programs: $missing of $rows programs on $LIST are missing"
    if [ ${#packages[@]} -gt 0 ]; then
        msg+="; install: apt-get install --no-install-recommends $(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')(test/lab/setup.sh installs the list)"
    fi
    echo "$msg" >&2
    exit 1
fi
echo "programs: all $rows on $LIST resolve"
