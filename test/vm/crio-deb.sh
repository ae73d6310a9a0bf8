#!/bin/bash
# Builds a cri-o .deb for the VM tier from the crio and pinns that
# test/crio/build.sh builds (cached) at CRIO_VERSION (test/versions.env): no
# Debian release ships CRI-O. The package holds crio, pinns, crio.service and
# test/vm/crio-deb/crio.conf (systemd cgroup manager, crun or runc, conmon
# and the CNI plugins from Debian) and a systemd .link file that keeps
# udev from changing veths' MAC addresses (80-cri-o-veth.link says why),
# and depends on Debian's packages for the
# rest, so that apt has to find them in the VM's local repository.
#   crio-deb.sh OUTDIR     prints the path of OUTDIR/cri-o_VERSION-1_amd64.deb
# Built again only when crio, this script or its files change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: crio-deb.sh OUTDIR}
# shellcheck source=../versions.env
. "$here/../versions.env"
bin=$("$here/../crio/build.sh")
version=${CRIO_VERSION#v}-1
arch=$(dpkg --print-architecture)
deb=$out/cri-o_${version}_$arch.deb
key=$( (cat "$0" "$here"/crio-deb/*; sha256sum "$bin/crio" "$bin/pinns") | sha256sum | cut -c1-16)
mkdir -p "$out"
if [ -f "$deb" ] && [ "$(cat "$deb.key" 2>/dev/null)" = "$key" ]; then
	echo "$deb"
	exit 0
fi
root=$(mktemp -d "$out/.cri-o.XXXXXX")
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin/crio" "$root/usr/bin/crio"
install -D -m 0755 "$bin/pinns" "$root/usr/bin/pinns"
install -D -m 0644 "$here/crio-deb/crio.service" "$root/usr/lib/systemd/system/crio.service"
install -D -m 0644 "$here/crio-deb/crio.conf" "$root/etc/crio/crio.conf"
install -D -m 0644 "$here/crio-deb/80-cri-o-veth.link" "$root/usr/lib/systemd/network/80-cri-o-veth.link"
install -d "$root/etc/crio/crio.conf.d" "$root/DEBIAN"
echo /etc/crio/crio.conf >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<CONTROL
Package: cri-o
Version: $version
Architecture: $arch
Maintainer: podunit maintainers <maintainers@podunit.invalid>
Section: admin
Priority: optional
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: conmon, crun | runc, containernetworking-plugins, golang-github-containers-common, golang-github-containers-image, containers-storage, nftables | iptables, libc6
Description: OCI-based Kubernetes container runtime (podunit's VM tier)
 CRI-O $CRIO_VERSION built from its Go module for podunit's VM tests, with
 Debian's conmon, crun or runc and CNI plugins.
CONTROL
# As Debian's packages of daemons: enabled and started on install,
# restarted on upgrade, stopped on removal.
cat >"$root/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
	# 80-cri-o-veth.link, for the next veth.
	udevadm control --reload >/dev/null 2>&1 || true
	deb-systemd-helper unmask crio.service >/dev/null || true
	if deb-systemd-helper --quiet was-enabled crio.service; then
		deb-systemd-helper enable crio.service >/dev/null || true
	else
		deb-systemd-helper update-state crio.service >/dev/null || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			deb-systemd-invoke restart crio.service >/dev/null || true
		else
			deb-systemd-invoke start crio.service >/dev/null || true
		fi
	fi
fi
SH
cat >"$root/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	deb-systemd-invoke stop crio.service >/dev/null || true
fi
SH
cat >"$root/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
	deb-systemd-helper purge crio.service >/dev/null || true
fi
SH
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
dpkg-deb --root-owner-group -Zgzip --build "$root" "$deb.new" >/dev/null
mv "$deb.new" "$deb"
echo "$key" >"$deb.key"
echo "$deb"
