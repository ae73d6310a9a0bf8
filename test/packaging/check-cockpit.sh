#!/bin/bash
# Checks the cockpit-podunit packages (make test-packages):
#   check-cockpit.sh COCKPIT.deb COCKPIT.rpm PODUNIT.deb
# - lintian on the .deb: no errors; it depends on cockpit-bridge and podunit;
# - the .rpm as rpm sees it: noarch, the page's files, the same requirements;
# - in a fresh test bed: dpkg refuses the .deb without podunit, installs it
#   after podunit's, and Cockpit's bridge then lists the page (with its menu
#   entry "Pods"); removal takes the page and leaves podunit.
# Only the test bed this run boots is torn down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../testbed/testbed.sh
deb=$1 rpmfile=$2 podunit=$3
: "${PODUNIT_TESTBED_DIR:?set it: the test bed this run boots}"

fail() { echo "check-cockpit: FAIL: $*" >&2; exit 1; }
ok() { echo "check-cockpit: ok: $*" >&2; }

out=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
[ -n "$out" ] && echo "$out" >&2
if grep -q '^E:' <<<"$out"; then fail "lintian reports errors"; fi
[ "$(dpkg-deb -f "$deb" Architecture)" = all ] || fail "the .deb is not Architecture: all"
depends=$(dpkg-deb -f "$deb" Depends)
for d in 'cockpit-bridge (>= 266)' podunit; do
	grep -qF "$d" <<<"$depends" || fail "the .deb does not depend on $d: $depends"
done
ok "deb: lintian without errors, Architecture: all, Depends: $depends"

list=$(rpm -qp --list "$rpmfile")
for f in /usr/share/cockpit/podunit/manifest.json /usr/share/cockpit/podunit/index.html \
	/usr/share/cockpit/podunit/index.js /usr/share/cockpit/podunit/index.css; do
	grep -qx "$f" <<<"$list" || fail "$rpmfile lacks $f"
done
grep -qx -e /usr/share/cockpit <<<"$list" && fail "$rpmfile owns Cockpit's /usr/share/cockpit"
requires=$(rpm -qp --requires "$rpmfile")
for r in 'cockpit-bridge >= 266' podunit; do
	grep -qxF "$r" <<<"$requires" || fail "the .rpm does not require $r"
done
[ "$(rpm -qp --qf '%{ARCH}' "$rpmfile")" = noarch ] || fail "the .rpm is not noarch"
ok "rpm: noarch, the page's files, requires cockpit-bridge and podunit"

booted=
cleanup() { [ -z "$booted" ] || "$tb" down; }
trap cleanup EXIT
"$tb" up
booted=1
cp "$deb" "$PODUNIT_TESTBED_DIR/cockpit-podunit.deb"
cp "$podunit" "$PODUNIT_TESTBED_DIR/podunit.deb"
tbx() { "$tb" exec "$@"; }
tbx rm -f /usr/sbin/policy-rc.d
if tbx dpkg -i /run/podunit-testbed/cockpit-podunit.deb >/dev/null 2>&1; then
	fail "dpkg installed cockpit-podunit without podunit"
fi
tbx dpkg -r cockpit-podunit >/dev/null 2>&1 || true
tbx dpkg -i /run/podunit-testbed/podunit.deb /run/podunit-testbed/cockpit-podunit.deb >/dev/null
packages=$(tbx cockpit-bridge --packages)
grep -qE '^podunit[[:space:]]+Pods[[:space:]]+/usr/share/cockpit/podunit$' <<<"$packages" ||
	fail "cockpit-bridge --packages does not list the page:"$'\n'"$packages"
ok "installed after podunit: cockpit-bridge lists it: $(grep '^podunit' <<<"$packages")"
tbx dpkg -r cockpit-podunit
tbx test -e /usr/share/cockpit/podunit && fail "removal left /usr/share/cockpit/podunit"
tbx test -x /usr/bin/podunit || fail "removing the page removed podunit"
ok "removed: the page gone, podunit kept"
