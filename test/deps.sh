#!/bin/bash
# Installs what building and testing podunit needs on Debian 12: the Debian
# packages of the test bed (systemd, D-Bus, containerd, runc, CNI plugins,
# busybox-static and umoci for local images), of the CRI-O test bed (what
# crio, built by test/crio/build.sh, needs around it: conmon, runc,
# containers' policy, registries and storage configuration, skopeo to load
# images, nftables), of the VM tier (qemu, mmdebstrap), of the console's
# browser tests and make demo's console (Debian's Cockpit, chromium, socat,
# sudo for the administrator's access)
# and the Go modules. Packages
# already installed are not touched; apt runs only when something is missing.
set -euo pipefail
packages=(systemd dbus containerd runc crun containernetworking-plugins busybox-static
	umoci iptables nftables iproute2 util-linux jq curl git make gcc wrk
	lintian rpm
	docker-registry skopeo apache2-utils openssl
	conmon golang-github-containers-common golang-github-containers-image containers-storage nftables
	qemu-system-x86 qemu-utils mmdebstrap e2fsprogs openssh-client debian-archive-keyring dpkg-dev zstd
	cockpit-ws cockpit-bridge cockpit-system chromium socat sudo)
missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
	[ "$status" = "install ok installed" ] || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go=${GO:-go}
command -v "$go" >/dev/null || go=/usr/local/go/bin/go
"$go" mod download
# nfpm, pinned in tools/go.mod (make packages).
"$go" mod download -modfile=tools/go.mod
