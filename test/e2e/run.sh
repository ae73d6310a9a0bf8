#!/bin/bash
# Runs the end-to-end tests in a fresh test bed and always tears it down.
#   run.sh INSTALL_TREE TEST_BINARY [test flags…]
# INSTALL_TREE is a `make install DESTDIR=…` tree (PREFIX=/usr/local).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../testbed/testbed.sh
tree=$1 bin=$2
shift 2

rc=0
cleanup() {
	if [ "$rc" != 0 ]; then
		echo "--- e2e failed; the test bed's journal (last 150 lines):" >&2
		"$tb" exec journalctl --no-pager -n 150 >&2 || true
	fi
	"$tb" down
}
trap 'rc=$?; cleanup; exit $rc' EXIT

"$tb" up
"$tb" install "$tree"
"$tb" exec systemctl enable --now podunit.path podunit-sync.timer
"$tb" run "$bin" -test.v -test.timeout 20m "$@"
