#!/bin/bash
# The reboot story, in a fresh test bed that is powered off and booted
# again, then has its power cut (while a pod is replaced by a version that
# crashes: it must come back rolled back) and is booted again; TestReboot checks each
# time that every pod is back as its manifest says and nothing of before is
# left. A manifest is removed while the test bed is off each time. Always
# tears the test bed down.
#   reboot.sh INSTALL_TREE TEST_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../testbed/testbed.sh
TB=${PODUNIT_TESTBED_DIR:-/var/lib/podunit-testbed/default}
tree=$1 bin=$2

rc=0 booted=
cleanup() {
	[ -n "$booted" ] || return 0
	if [ "$rc" != 0 ] && "$tb" pid >/dev/null 2>&1; then
		echo "--- reboot test failed; the test bed's journal (last 150 lines):" >&2
		"$tb" exec journalctl --no-pager -n 150 >&2 || true
	fi
	"$tb" down
}
trap 'rc=$?; cleanup; exit $rc' EXIT

phase() { # prepare|cut|check [removed pod]
	env PODUNIT_E2E_REBOOT="$1" PODUNIT_E2E_REMOVED="${2:-}" PODUNIT_E2E_CUT="${CUT:-}" \
		"$tb" run "$bin" -test.v -test.run '^TestReboot$' -test.timeout 10m
}
# remove_while_off NAME: the manifest goes while nothing of the test bed
# runs, from the disk its /etc lives on.
remove_while_off() {
	local f=$TB/state/upper/etc/podunit/manifests/$1.yaml
	[ -f "$f" ] || { echo "reboot.sh: $f: no such manifest on the test bed's disk" >&2; exit 1; }
	rm "$f"
}

"$tb" up
booted=1
"$tb" install "$tree"
# What the package enables.
"$tb" exec systemctl enable --now podunit.path podunit-sync.timer podunit-status.socket
echo "=== pods running before"
phase prepare

echo "=== a clean reboot"
"$tb" poweroff
remove_while_off e2e-boot-gone1
"$tb" boot
phase check e2e-boot-gone1

echo "=== a power cut, while a pod is replaced by a version that crashes"
phase cut
"$tb" crash
remove_while_off e2e-boot-gone2
"$tb" boot
CUT=1 phase check e2e-boot-gone2
