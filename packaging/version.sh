#!/bin/sh
# The package version: the last v* tag (v1.2.0 → 1.2.0), with
# +git<commits since>.g<hash> when HEAD is past it; before the first tag,
# 0.1.0+git<commits>.g<hash>. Ascending with every commit, and valid for
# both dpkg and rpm.
set -e
if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	tag=${desc%-*-g*} rest=${desc#"$tag"-}
	n=${rest%%-*} hash=${rest#*-}
	version=${tag#v}
	[ "$n" = 0 ] || version="$version+git$n.$hash"
else
	version="0.1.0+git$(git rev-list --count HEAD).g$(git rev-parse --short HEAD)"
fi
echo "$version"
