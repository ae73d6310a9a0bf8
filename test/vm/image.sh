#!/bin/bash
# Builds (or finds, cached) a bootable Debian image for the VM tier from
# Debian's packages alone, and prints its directory:
#   image.sh DIST        (bookworm, trixie, forky)
# The directory holds base.img (raw ext4, the root filesystem), vmlinuz and
# initrd.img (booted directly by qemu), and id_ed25519 (root's ssh key).
# The image has systemd as PID 1, D-Bus, sshd and the network, but not the
# container runtime: containerd, runc and the CNI plugins wait in a local
# file repository inside it (/srv/podunit-repo, apt's only source; run
# `apt-get update` first, as on any machine), so that `apt install
# ./podunit_*.deb` must resolve podunit's dependencies as on a user's
# machine. PODUNIT_VM_RUNTIME=crio adds what the cri-o package of
# test/vm/crio-deb.sh depends on (conmon, crun, containers' configuration)
# and skopeo to the repository: an image of its own, DIST+crio-KEY (the
# story puts the cri-o .deb beside them). The cache key is this script,
# DIST and the additions: a change to any builds a new image.
#
# The mirror is the host's own Debian mirror (its apt sources), unless
# MIRROR is set. PODUNIT_VM_EXTRA names more packages for the local
# repository (the side-by-side benchmark's podman): an image of its own,
# DIST+extra-KEY, next to the plain one.
set -euo pipefail
dist=${1:?usage: image.sh DIST}
here=$(cd "$(dirname "$0")" && pwd)
root=${PODUNIT_VM_DIR:-/var/lib/podunit-vm}

# What the guest has from the start, and what apt must find for podunit.
base_packages=systemd-sysv,dbus,libpam-systemd,udev,kmod,linux-image-amd64,initramfs-tools,zstd,openssh-server,iptables,busybox-static,iproute2,procps,e2fsprogs,netbase,login,mount,passwd,ca-certificates
repo_packages="containerd runc containernetworking-plugins nftables"
extra=${PODUNIT_VM_EXTRA:-}
name=$dist${extra:++extra}
if [ "${PODUNIT_VM_RUNTIME:-containerd}" = crio ]; then
	extra+=" conmon crun golang-github-containers-common golang-github-containers-image containers-storage skopeo"
	name=$dist+crio
fi
repo_packages+=${extra:+ $extra}

key=$( (cat "$0"; echo "$dist"; echo "$extra") | sha256sum | cut -c1-12)
out=$root/$name-$key
if [ -f "$out/done" ]; then
	echo "$out"
	exit 0
fi

mirror=${MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || { echo "image.sh: no Debian mirror in the host's apt sources; set MIRROR" >&2; exit 1; }
fi

log() { printf 'vm image: %s\n' "$*" >&2; }
# mmdebstrap mounts /dev, /proc and /sys into the root filesystem while it
# builds: never remove a directory something is still mounted below (a
# build that was killed, or one still running).
if grep -q " $out.tmp/" /proc/self/mountinfo; then
	log "$out.tmp has mounts below it (a build still running?); not removing it"
	exit 1
fi
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
trap 'grep -q " $out.tmp/" /proc/self/mountinfo || rm -rf "$out.tmp"' EXIT
ssh-keygen -q -t ed25519 -N '' -C podunit-vm -f "$out.tmp/id_ed25519"

log "building $dist from $mirror (mmdebstrap)"
start=$SECONDS
rootfs=$out.tmp/rootfs
# Forky's index files are "expired" against a clock that is behind the
# archive's: do not check.
mmdebstrap --mode=root --variant=apt --format=directory \
	--aptopt='Acquire::Check-Valid-Until "false"' \
	--include="$base_packages" \
	--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"
		echo MODULES=list >"$1/etc/initramfs-tools/conf.d/podunit-vm"
		printf "%s\n" virtio_pci virtio_blk virtio_net ext4 >"$1/usr/share/initramfs-tools/modules.d/podunit-vm"' \
	--customize-hook='set -e
		echo podunit-vm >"$1/etc/hostname"
		printf "127.0.1.1\tpodunit-vm\n" >>"$1/etc/hosts"
		mkdir -p -m 700 "$1/root/.ssh"
		cp "'"$out.tmp"'/id_ed25519.pub" "$1/root/.ssh/authorized_keys"
		printf "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n" >"$1/etc/systemd/network/80-vm.network"
		chroot "$1" systemctl enable systemd-networkd.service systemd-networkd-wait-online.service ssh.service
		chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer man-db.timer 2>/dev/null || true
		echo "root:podunit" | chroot "$1" chpasswd
		# The runtime, for apt to find: downloaded, not installed.
		chroot "$1" apt-get clean
		chroot "$1" apt-get install -y -qq --download-only '"$repo_packages"'
		mkdir -p "$1/srv/podunit-repo"
		mv "$1"/var/cache/apt/archives/*.deb "$1/srv/podunit-repo/"
		(cd "$1/srv/podunit-repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
		rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*
		echo "deb [trusted=yes] file:/srv/podunit-repo ./" >"$1/etc/apt/sources.list.d/podunit-repo.list"
		cp "$1"/boot/vmlinuz-* "'"$out.tmp"'/vmlinuz"
		cp "$1"/boot/initrd.img-* "'"$out.tmp"'/initrd.img"
		chroot "$1" apt-get clean' \
	"$dist" "$rootfs" "$mirror" >&2
log "root filesystem in $((SECONDS - start)) s; making the disk"
mkfs.ext4 -q -L root -d "$rootfs" "$out.tmp/base.img" 4G >&2
rm -rf "$rootfs"
date -u +%FT%TZ >"$out.tmp/done"
trap - EXIT
rm -rf "$out"
mv "$out.tmp" "$out"
# Older images of this distribution (and kind) go.
for old in "$root/$name"-*; do
	[ "$old" = "$out" ] || rm -rf "$old"
done
log "$name image in $((SECONDS - start)) s: $out"
echo "$out"
