#!/bin/bash
# Builds Kubernetes programs at KUBERNETES_VERSION and etcd at ETCD_VERSION
# (test/versions.env) from the Go module proxy into a cache on this machine,
# for the oracle tests (issue #29):
#
#   test/k8s/build.sh [program...]   print the directory holding them
#
# program is kube-apiserver (the default), kubelet, kubectl, kubeadm,
# kube-controller-manager or kube-scheduler; etcd is always built.
#
# k8s.io/kubernetes cannot be installed with go install: its go.mod replaces
# the staging modules (k8s.io/api, k8s.io/apimachinery, ...) with directories
# of its own tree. A throwaway module requires it and replaces each staging
# module by its published v0.x version (v1.37.2 -> v0.37.2); the list of
# staging modules is read from k8s.io/kubernetes' own go.mod, so a new version
# needs no edit here. etcd is a throwaway module of its own (its dependencies
# differ from the API server's) whose main calls etcdmain.Main, as etcd's own
# main does. Nothing of either source is kept anywhere but Go's module cache.
# A second run with the same versions prints the cached directory at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../versions.env
. "$here/../versions.env"
go=${GO:-go}
command -v "$go" >/dev/null || go=/usr/local/go/bin/go
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -mod=mod"
cache=${PODUNIT_BUILD_CACHE:-/var/cache/podunit-test}/k8s-$KUBERNETES_VERSION
out=$cache/bin
log() { printf 'k8s-build: %s\n' "$*" >&2; }

programs=("$@")
[ ${#programs[@]} -gt 0 ] || programs=(kube-apiserver)
declare -A pkg=(
	[kube-apiserver]=cmd/kube-apiserver
	[kubelet]=cmd/kubelet
	[kubectl]=cmd/kubectl
	[kubeadm]=cmd/kubeadm
	[kube-controller-manager]=cmd/kube-controller-manager
	[kube-scheduler]=cmd/kube-scheduler
)
missing=()
for p in "${programs[@]}"; do
	[ -n "${pkg[$p]:-}" ] || { log "unknown program $p (one of: ${!pkg[*]})"; exit 2; }
	[ -x "$out/$p" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ -x "$out/etcd-$ETCD_VERSION" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$out"

if [ ${#missing[@]} -gt 0 ]; then
	mod=$cache/mod
	rm -rf "$mod" && mkdir -p "$mod"
	staging=v0.${KUBERNETES_VERSION#v1.}
	log "reading k8s.io/kubernetes $KUBERNETES_VERSION's go.mod"
	kmod=$(cd "$mod" && "$go" mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	{
		printf 'module podunit.test/k8s-build\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
		sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$kmod"
		printf ')\n'
	} >"$mod/go.mod"
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		for p in "${missing[@]}"; do printf '\t_ "k8s.io/kubernetes/%s"\n' "${pkg[$p]}"; done
		printf ')\n'
	} >"$mod/tools.go"
	log "resolving k8s.io/kubernetes $KUBERNETES_VERSION (staging modules at $staging)"
	(cd "$mod" && "$go" mod tidy >&2)
	for p in "${missing[@]}"; do
		log "building $p (minutes on a cold module cache)"
		(cd "$mod" && CGO_ENABLED=0 "$go" build -trimpath \
			-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION" \
			-o "$out/$p.new" "k8s.io/kubernetes/${pkg[$p]}")
		mv "$out/$p.new" "$out/$p"
	done
fi

if [ ! -x "$out/etcd-$ETCD_VERSION" ]; then
	emod=$cache/etcd-mod
	rm -rf "$emod" && mkdir -p "$emod"
	cat >"$emod/go.mod" <<EOM
module podunit.test/etcd-build

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOM
	cat >"$emod/main.go" <<'EOM'
// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOM
	log "resolving go.etcd.io/etcd/server/v3 $ETCD_VERSION"
	(cd "$emod" && "$go" mod tidy >&2)
	log "building etcd"
	(cd "$emod" && CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w" -o "$out/etcd.new" .)
	mv "$out/etcd.new" "$out/etcd-$ETCD_VERSION"
fi
ln -sfn "etcd-$ETCD_VERSION" "$out/etcd"
"$out/etcd" --version >&2 || true
for p in "${programs[@]}"; do
	if [ "$p" = kubectl ]; then "$out/$p" version --client >&2 || true; else "$out/$p" --version >&2 || true; fi
done
echo "$out"
