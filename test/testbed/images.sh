#!/bin/bash
# Builds the test bed's two local OCI images from Debian's busybox-static:
#   localhost/podunit/busybox:1.35  busybox and all its applets, cmd "sh"
#   localhost/podunit/pause:1       the same files, entrypoint "sleep infinity"
# No registry is reachable here, so these stand in for the usual ones.
# Usage: images.sh OUTDIR   (writes OUTDIR/busybox.tar and OUTDIR/pause.tar)
set -euo pipefail
out=$1
[ -s "$out/busybox.tar" ] && [ -s "$out/pause.tar" ] && exit 0

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

oci=$work/oci
umoci init --layout "$oci"
umoci new --image "$oci:base"
umoci unpack --image "$oci:base" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,www,root}
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list-full); do
	[ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
umoci repack --image "$oci:base" "$work/bundle" >/dev/null

export_image() { # tag tarball config-args...
	local tag=$1 tar=$2
	shift 2
	umoci config --image "$oci:base" --tag "$tag" "$@"
	local one=$work/one-$tag
	umoci init --layout "$one"
	# A layout that holds only this tag, without its ref name: the import
	# then knows the image by --index-name alone. (containerd's CRI caches
	# the first name an image had, so a second name would stick.)
	cp -r "$oci/blobs" "$one/"
	jq --arg tag "$tag" '.manifests |= map(select(.annotations["org.opencontainers.image.ref.name"] == $tag) | del(.annotations))' \
		"$oci/index.json" >"$one/index.json"
	tar -C "$one" -cf "$tar.tmp" .
	mv "$tar.tmp" "$tar"
}
export_image busybox "$out/busybox.tar" --config.cmd sh --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin
export_image pause "$out/pause.tar" --config.entrypoint /bin/sleep --config.cmd infinity
