#!/bin/bash
# Runs make's stages one after the other, as make test's prerequisites
# would, timing each: at the end, or at the first failure, a table of how
# long each stage took (also in bin/stages.txt), so that a run that grows
# past its budget says where the time went.
#   stages.sh MAKE STAGE...
set -uo pipefail
make=$1
shift
mkdir -p bin
table=bin/stages.txt
: >"$table"
start=$SECONDS
rc=0
report() {
	{
		printf '\n%-24s %8s\n' stage time
		cat "$table"
		printf '%-24s %5dm%02ds\n' total $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
	} >&2
}
trap report EXIT
for stage in "$@"; do
	t0=$SECONDS
	$make --no-print-directory "$stage"
	rc=$?
	d=$((SECONDS - t0))
	result=$([ "$rc" = 0 ] && echo "" || echo " FAILED")
	printf '%-24s %5dm%02ds%s\n' "$stage" $((d / 60)) $((d % 60)) "$result" >>"$table"
	[ "$rc" = 0 ] || exit "$rc"
done
