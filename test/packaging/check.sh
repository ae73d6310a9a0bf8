#!/bin/bash
# Checks the packages (make test-packages):
#   check.sh OLD.deb NEW.deb OLD.rpm NEW.rpm
# - lintian on the .deb: no errors (warnings are printed; docs/packaging.md
#   justifies each);
# - the .rpm as rpm sees it: files, config files, scriptlets, requirements;
# - in a fresh test bed (real systemd, containerd, CNI): dpkg installs
#   OLD.deb and enables podunit's units, a dropped manifest runs as a pod,
#   NEW.deb (a higher version) upgrades podunit while the pod keeps running
#   in the same unit invocation with the same container, removal stops
#   podunit's units and leaves the pod's data, purge removes the config;
#   then the same install, upgrade and erase with rpm (Debian's rpm, with
#   --nodeps: its database knows no Debian package), for the scriptlets.
# Only the test bed this run boots is torn down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tb=$here/../testbed/testbed.sh
old=$1 new=$2 rpmfile=$3 rpmnew=$4
: "${PODUNIT_TESTBED_DIR:?set it: the test bed this run boots}"

fail() { echo "check-packages: FAIL: $*" >&2; exit 1; }
ok() { echo "check-packages: ok: $*" >&2; }

# --- lintian
out=$(lintian --tag-display-limit 0 "$old" 2>&1 | grep -v 'running with root privileges' || true)
[ -n "$out" ] && echo "$out" >&2
if grep -q '^E:' <<<"$out"; then fail "lintian reports errors"; fi
ok "lintian: no errors"
# Either runtime satisfies the .deb: containerd or CRI-O.
depends=$(dpkg-deb -f "$old" Depends)
for d in 'containerd | cri-o' 'runc | crun' containernetworking-plugins; do
	grep -qF "$d" <<<"$depends" || fail "the .deb does not depend on $d: $depends"
done
ok "deb: depends on $depends"

# --- the .rpm
list=$(rpm -qp --list "$rpmfile")
for f in /usr/bin/podunit /usr/libexec/podunit/podshim /usr/lib/systemd/system/podunit.path \
	/usr/lib/systemd/system/podunit-sync.service /usr/lib/systemd/system/podunit-sync.timer \
	/usr/lib/systemd/system/podunit-status.socket /usr/lib/systemd/system/podunit-status.service \
	/usr/lib/systemd/system/podunit.slice /usr/lib/systemd/system/podunit-critical.target /usr/lib/sysusers.d/podunit.conf /usr/lib/tmpfiles.d/podunit.conf \
	/usr/lib/systemd/system/podunit-images.path /usr/lib/systemd/system/podunit-images.service \
	/usr/lib/systemd/system/podunit-auto-update.timer /usr/lib/systemd/system/podunit-auto-update.service \
	/usr/lib/systemd/system-preset/80-podunit.preset /usr/share/man/man8/podunit.8.gz /usr/share/man/man5/podunit-manifest.5.gz \
	/usr/share/bash-completion/completions/podunit /etc/podunit/manifests; do
	grep -qx "$f" <<<"$list" || fail "$rpmfile lacks $f"
done
if grep -qx -e /usr/share/man -e /usr/lib/systemd/system -e /usr/share/lintian <<<"$list"; then
	fail "$rpmfile owns a directory of the system's"
fi
[ "$(rpm -qp --configfiles "$rpmfile")" = /etc/podunit/config.yaml ] || fail "config.yaml is not the .rpm's config file"
scripts=$(rpm -qp --scripts "$rpmfile")
for s in 'postinstall scriptlet' 'systemctl --no-reload preset podunit.path' \
	'preuninstall scriptlet' 'disable --now podunit.path' \
	'postuninstall scriptlet' 'try-restart podunit-status.service'; do
	grep -qF "$s" <<<"$scripts" || fail "the .rpm's scriptlets lack: $s"
done
grep -q 'systemctl.*restart.*pod-' <<<"$scripts" && fail "an .rpm scriptlet restarts pods"
requires=$(rpm -qp --requires "$rpmfile")
for r in 'systemd >= 247' '(containerd or cri-o)' '(runc or crun)' 'containernetworking-plugins'; do
	grep -qxF "$r" <<<"$requires" || fail "the .rpm does not require $r"
done
ok "rpm: files, config file, scriptlets and requirements"

# --- the .deb in a test bed
booted=
cleanup() { [ -z "$booted" ] || "$tb" down; }
trap cleanup EXIT
"$tb" up
booted=1
cp "$old" "$PODUNIT_TESTBED_DIR/old.deb"
cp "$new" "$PODUNIT_TESTBED_DIR/new.deb"
cp "$rpmfile" "$PODUNIT_TESTBED_DIR/old.rpm"
cp "$rpmnew" "$PODUNIT_TESTBED_DIR/new.rpm"
tbx() { "$tb" exec "$@"; }
wait_for() { # seconds description command...
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || { tbx systemctl --no-pager status 'pod-*' podunit-sync.service >&2 || true; fail "timed out: $what"; }
		sleep 0.5
	done
}
# This host forbids service starts from packages (policy-rc.d exits 101, as
# in container images); a server does not: the test bed's copy goes.
tbx rm -f /usr/sbin/policy-rc.d
cni_before=$(tbx sha256sum /etc/cni/net.d/10-podunit.conflist)

tbx dpkg -i /run/podunit-testbed/old.deb
for u in podunit.path podunit-sync.timer podunit-status.socket podunit-images.path podunit-auto-update.timer; do
	[ "$(tbx systemctl is-enabled "$u")" = enabled ] || fail "$u is not enabled after install"
	[ "$(tbx systemctl is-active "$u")" = active ] || fail "$u is not active after install"
done
tbx getent group podunit >/dev/null || fail "no podunit group"
[ "$(tbx stat -c %G:%a /run/podunit/status.sock)" = podunit:660 ] || fail "status socket: $(tbx stat -c %G:%a /run/podunit/status.sock)"
[ "$(tbx sha256sum /etc/cni/net.d/10-podunit.conflist)" = "$cni_before" ] || fail "the host's CNI network was replaced"
ok "installed: units enabled and active, podunit group on the status socket, the host's CNI network kept"

tbx sh -c 'cat >/etc/podunit/manifests/web.yaml' <<'POD'
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: localhost/podunit/busybox:1.35
    command: [sh, -c, "trap 'exit 0' TERM; sleep 86400 & wait"]
POD
wait_for 90 "pod-web.service active" tbx systemctl is-active --quiet pod-web.service
container() { tbx podunit get pods web -o json | jq -r '.items[0].status.containerStatuses[0].containerID'; }
invocation() { tbx systemctl show -p InvocationID --value pod-web.service; }
cid=$(container) inv=$(invocation)
[[ $cid == containerd://* ]] || fail "container ID $cid"
ok "a dropped manifest runs: $cid"
tbx podunit doctor >&2 || fail "podunit doctor"
security=$(tbx systemd-analyze security --no-pager podunit-status.service | tail -1)
echo "check-packages: systemd-analyze security podunit-status.service: $security" >&2

old_version=$(tbx podunit version)
tbx dpkg -i /run/podunit-testbed/new.deb
new_version=$(tbx podunit version)
[ "$new_version" != "$old_version" ] || fail "podunit version did not change: $new_version"
[ "$(tbx systemctl is-active pod-web.service)" = active ] || fail "the pod is not active after the upgrade"
[ "$(invocation)" = "$inv" ] || fail "the pod's unit was restarted by the upgrade"
[ "$(container)" = "$cid" ] || fail "the pod's container changed in the upgrade"
[ "$(tbx systemctl is-active podunit.path)" = active ] || fail "podunit.path is not active after the upgrade"
ok "upgraded ($old_version → $new_version): the pod kept its unit and container $cid"

tbx dpkg -r podunit
for u in podunit.path podunit-sync.timer podunit-status.socket podunit-status.service podunit-images.path podunit-auto-update.timer; do
	state=$(tbx systemctl is-active "$u" || true)
	[ "$state" = active ] && fail "$u still active after removal"
	tbx test -e "/usr/lib/systemd/system/$u" && fail "$u still installed after removal"
	load=$(tbx systemctl show -p LoadState --value "$u")
	# masked: what debhelper's postrm does on removal, until a purge
	[ "$load" = not-found ] || [ "$load" = masked ] || fail "$u is $load after removal"
done
tbx test -f /etc/podunit/config.yaml || fail "removal took the configuration (only purge may)"
tbx test -d /var/lib/podunit || fail "removal took /var/lib/podunit"
ok "removed: podunit's units stopped and gone, configuration and data kept"
tbx dpkg -P podunit
tbx test -e /etc/podunit/config.yaml && fail "purge left config.yaml"
ok "purged: configuration gone"

# --- the .rpm's scriptlets, in the same test bed: the pod still runs (removal
# leaves pods), and its manifest is still there (purge keeps manifests).
tbx rpm -i --nodeps /run/podunit-testbed/old.rpm
for u in podunit.path podunit-sync.timer podunit-status.socket podunit-images.path podunit-auto-update.timer; do
	[ "$(tbx systemctl is-enabled "$u")" = enabled ] || fail "$u is not enabled after rpm -i (preset)"
	[ "$(tbx systemctl is-active "$u")" = active ] || fail "$u is not active after rpm -i"
done
wait_for 60 "the pod in the status API after rpm -i" sh -c "[ \"\$($tb exec podunit get pods web -o name 2>/dev/null)\" = pod/web ]"
[ "$(invocation)" = "$inv" ] || fail "the pod's unit was restarted by rpm -i"
tbx rpm -U --nodeps /run/podunit-testbed/new.rpm
[ "$(tbx podunit version)" = "$new_version" ] || fail "rpm -U: $(tbx podunit version)"
[ "$(invocation)" = "$inv" ] || fail "the pod's unit was restarted by rpm -U"
[ "$(container)" = "$cid" ] || fail "the pod's container changed in rpm -U"
[ "$(tbx systemctl is-active podunit.path)" = active ] || fail "podunit.path is not active after rpm -U"
ok "rpm: installed (preset enables the units), upgraded under the running pod"
tbx rpm -e --nodeps podunit
for u in podunit.path podunit-sync.timer podunit-status.socket; do
	state=$(tbx systemctl is-active "$u" || true)
	[ "$state" = active ] && fail "$u still active after rpm -e"
	tbx test -e "/usr/lib/systemd/system/$u" && fail "$u still installed after rpm -e"
done
tbx test -d /var/lib/podunit || fail "rpm -e took /var/lib/podunit"
ok "rpm: erased: podunit's units stopped and gone, data kept"
