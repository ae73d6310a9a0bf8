#!/bin/bash
# Builds CRI-O's crio and pinns at CRIO_VERSION (test/versions.env) from the
# Go module proxy into a cache on this machine, for the CRI-O test bed:
#
#   test/crio/build.sh            print the directory holding crio and pinns
#
# No cri-o package exists in Debian 12, 13 or 14; cri-o is a Go module
# without replace lines, so a throwaway module that requires it builds
# cmd/crio (go install asks for the version list, which is refused). pinns is
# C in the same module: make in a writable copy of its directory. Nothing of
# cri-o's source is kept anywhere but Go's module cache. A second run with
# the same version prints the cached directory at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../versions.env
. "$here/../versions.env"
go=${GO:-go}
command -v "$go" >/dev/null || go=/usr/local/go/bin/go
cache=${PODUNIT_BUILD_CACHE:-/var/cache/podunit-test}/crio-$CRIO_VERSION
out=$cache/bin
if [ -x "$out/crio" ] && [ -x "$out/pinns" ]; then
	echo "$out"
	exit 0
fi
log() { printf 'crio-build: %s\n' "$*" >&2; }
mod=$cache/mod
rm -rf "$mod" && mkdir -p "$mod" "$out"
cd "$mod"
cat >go.mod <<EOM
module podunit.test/crio-build

go 1.24

require github.com/cri-o/cri-o $CRIO_VERSION
EOM
cat >tools.go <<'EOM'
//go:build tools

package tools

import _ "github.com/cri-o/cri-o/cmd/crio"
EOM
log "resolving github.com/cri-o/cri-o $CRIO_VERSION"
GOFLAGS=-mod=mod "$go" mod tidy >&2
tags='containers_image_openpgp containers_image_ostree_stub exclude_graphdriver_btrfs'
log "building crio (a few minutes on a cold module cache)"
ver=${CRIO_VERSION#v}
CGO_ENABLED=1 "$go" build -tags "$tags" -trimpath \
	-ldflags "-X github.com/cri-o/cri-o/internal/version.Version=$ver" \
	-o "$out/crio.new" github.com/cri-o/cri-o/cmd/crio
src=$("$go" list -m -f '{{.Dir}}' github.com/cri-o/cri-o)
log "building pinns from $src/pinns"
# pinns's Makefile writes its binary to ../bin/pinns: a directory of its own.
rm -rf "$cache/src" && mkdir -p "$cache/src" && cp -r "$src/pinns" "$cache/src/pinns" && chmod -R u+w "$cache/src"
make -C "$cache/src/pinns" >&2
install -m 0755 "$cache/src/bin/pinns" "$out/pinns"
mv "$out/crio.new" "$out/crio"
"$out/crio" --version >&2 || true
echo "$out"
