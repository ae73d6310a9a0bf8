#!/bin/bash
# Builds OCI image archives of Kubernetes' control-plane programs, built by
# test/k8s/build.sh, for kubeadm's static pods under podunit (no registry
# is reachable here):
#   images.sh BIN_DIR OUT_DIR
# writes OUT_DIR/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd}.tar,
# each an OCI archive of the image localhost/podunit/NAME:TAG (TAG: test/
# versions.env's KUBERNETES_VERSION, ETCD_VERSION for etcd), that
# `podunit images import` imports by that name. An image is busybox-static
# (a shell and the tools kubeadm's probes never need, but people do) and the
# program in /usr/local/bin, where kubeadm's manifests run it from PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../versions.env
. "$here/../versions.env"
bin=$1 out=$2
mkdir -p "$out"
stamp=$( (sha256sum "$0"; ls -l --time-style=+%s "$bin") | sha256sum | cut -c1-16)
if [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
	exit 0
fi
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

image() { # NAME TAG PROGRAM
	local name=$1 tag=$2 program=$3 oci=$work/oci-$1 bundle=$work/bundle-$1
	umoci init --layout "$oci"
	umoci new --image "$oci:$tag"
	umoci unpack --image "$oci:$tag" "$bundle" >/dev/null
	local rootfs=$bundle/rootfs
	mkdir -p "$rootfs"/{bin,etc,tmp,usr/local/bin}
	chmod 1777 "$rootfs/tmp"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in sh ls cat ps wget; do ln -s busybox "$rootfs/bin/$applet"; done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	cp "$bin/$program" "$rootfs/usr/local/bin/$program"
	umoci repack --image "$oci:$tag" "$bundle" >/dev/null
	umoci config --image "$oci:$tag" --config.env PATH=/usr/local/bin:/bin --config.entrypoint "/usr/local/bin/$program"
	# The archive names its image in full (podunit images import, ctr).
	jq --arg n "localhost/podunit/$name:$tag" '.manifests |= map(.annotations["io.containerd.image.name"] = $n)' \
		"$oci/index.json" >"$oci/index.json.new" && mv "$oci/index.json.new" "$oci/index.json"
	tar -C "$oci" -cf "$out/$name.tar.new" .
	mv "$out/$name.tar.new" "$out/$name.tar"
}
for p in kube-apiserver kube-controller-manager kube-scheduler; do
	image "$p" "$KUBERNETES_VERSION" "$p"
done
image etcd "${ETCD_VERSION#v}-0" etcd
echo "$stamp" >"$out/stamp"
