#!/bin/bash
# Prints the Debian packages of test/lab/programs.tsv, one per line, each once, in the list's order.
# A "-" package (a prerequisite such as Node.js) is not printed: setup.sh does not install it.
# Env: HOSTVISOR_PROGRAMS (default: programs.tsv next to this script).
set -euo pipefail
LIST=${HOSTVISOR_PROGRAMS:-$(dirname "${BASH_SOURCE[0]}")/programs.tsv}
[ -r "$LIST" ] || { echo "packages.sh: $LIST missing" >&2; exit 1; }
seen=' '
while IFS=$'\t' read -r program package _; do
    [[ -z $program || $program == '#'* || -z $package || $package == - ]] && continue
    [[ $seen == *" $package "* ]] && continue
    seen+="$package "
    echo "$package"
done < "$LIST"
