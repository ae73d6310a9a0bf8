#!/bin/bash
# Runs the end-to-end tests in a fresh test bed and always tears it down —
# only the one it booted: a test bed already running in the same directory
# (another run) is left alone and this run fails.
#   run.sh INSTALL_TREE TEST_BINARY [test flags…]
# INSTALL_TREE is a `make install DESTDIR=…` tree (PREFIX=/usr/local).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../testbed/testbed.sh
tree=$1 bin=$2
shift 2

rc=0 booted=
cleanup() {
	[ -n "$booted" ] || return 0
	if [ "$rc" != 0 ]; then
		echo "--- e2e failed; the test bed's journal (last 150 lines):" >&2
		"$tb" exec journalctl --no-pager -n 150 >&2 || true
	fi
	"$tb" down
}
trap 'rc=$?; cleanup; exit $rc' EXIT

"$tb" up
booted=1
"$tb" install "$tree"
# Other programs a suite needs in the test bed (the kubelet: make test-kubelet).
for extra in ${PODUNIT_E2E_EXTRA_TREES:-}; do "$tb" install "$extra"; done
"$tb" exec systemctl enable --now podunit.path podunit-sync.timer podunit-fetch.service podunit-status.socket podunit-status.service podunit-images.path
"$tb" run "$bin" -test.v -test.timeout 20m "$@"
