#!/bin/bash
# Builds the test bed's local OCI images from Debian's busybox-static:
#   localhost/podunit/busybox:1.35  busybox and all its applets, cmd "sh";
#                                   /usr/local/bin/etcd is a stand-in for etcd
#   localhost/podunit/pause:1       the same files, sleeping until SIGTERM
#   localhost/podunit/nginx:1       the same files, running httpd serving /www
#                                   on port 80: a stand-in for nginx, for
#                                   manifests that run an image as it is
# No registry is reachable here, so these stand in for the usual ones.
# Usage: images.sh OUTDIR   (writes OUTDIR/{busybox,pause,nginx}.tar)
set -euo pipefail
out=$1
# Built again whenever this script changes.
stamp=$(sha256sum "$0" | cut -c1-16)
if [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$out/busybox.tar" ] && [ -s "$out/pause.tar" ] && [ -s "$out/nginx.tar" ]; then
	exit 0
fi

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
echo 'podunit test bed' >"$rootfs/www/index.html"
# A stand-in for etcd, for kubeadm's etcd static pod as kubeadm writes it:
# it takes etcd's flags, keeps a member ID in --data-dir and answers
# /health, /livez and /readyz on --listen-metrics-urls, as etcd does.
mkdir -p "$rootfs/usr/local/bin"
cat >"$rootfs/usr/local/bin/etcd" <<'ETCD'
#!/bin/sh
data=/var/lib/etcd metrics=http://127.0.0.1:2381
for a in "$@"; do
	case $a in
	--data-dir=*) data=${a#*=} ;;
	--listen-metrics-urls=*) metrics=${a#*=} ;;
	esac
done
mkdir -p "$data/member" /tmp/etcd-www
[ -s "$data/member/id" ] || cat /proc/sys/kernel/random/uuid >"$data/member/id"
for p in health livez readyz; do echo '{"health":"true"}' >"/tmp/etcd-www/$p"; done
echo "etcd stand-in: member $(cat "$data/member/id"), data in $data, serving ${metrics#http://}"
httpd -f -p "${metrics#http://}" -h /tmp/etcd-www &
trap 'kill $!; exit 0' TERM
wait
ETCD
chmod 0755 "$rootfs/usr/local/bin/etcd"
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
export_image busybox "$out/busybox.tar" --config.cmd sh --config.env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# It stops at SIGTERM, as the kubelet's pause does: CRI-O stops a sandbox's
# infra container (a pod with shareProcessNamespace) with SIGTERM and waits
# for it until the StopPodSandbox call's deadline, where containerd sends
# SIGKILL at once.
export_image pause "$out/pause.tar" --config.entrypoint /bin/sh --config.entrypoint -c \
	--config.cmd "trap 'exit 0' TERM INT; sleep infinity & wait"
# Unlike busybox httpd alone, it stops at SIGTERM, as nginx does.
export_image nginx "$out/nginx.tar" --config.entrypoint /bin/sh --config.entrypoint -c \
	--config.cmd "httpd -f -p 80 -h /www & trap 'kill \$!; exit 0' TERM; wait" \
	--config.exposedports 80/tcp --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "$stamp" >"$out/stamp"
