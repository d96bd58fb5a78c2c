#!/bin/bash
# SPDX-License-Identifier: MIT
# build-deb.sh — build the Debian package of this working tree: binary only, unsigned.
#
#   packaging/build-deb.sh OUTDIR      leaves s3vfs_VERSION_ARCH.deb, .changes, .buildinfo
#
# dpkg-buildpackage wants debian/ at the top of the source tree, and ours lives in
# packaging/debian/: so the working tree as it is (tracked files and new ones that .gitignore
# does not exclude, uncommitted changes included; no build directories, no node_modules) is
# copied to a scratch directory, packaging/debian is copied to debian/ there, and
# `dpkg-buildpackage -us -uc -b` runs in it. The scratch directory is removed at the end.
#
# Needs (Debian 12): dpkg-dev debhelper fakeroot and the Build-Depends of
# packaging/debian/control; dpkg-buildpackage names what is missing.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "build-deb.sh: $*" >&2; exit 1; }

(($# == 1)) || die "usage: build-deb.sh OUTDIR"
mkdir -p "$1"
out=$(cd "$1" && pwd)
for p in dpkg-buildpackage dpkg-parsechangelog dh; do
	command -v "$p" >/dev/null || die "$p is missing: apt-get install dpkg-dev debhelper fakeroot"
done

version=$(dpkg-parsechangelog -l "$REPO/packaging/debian/changelog" -S Version)
upstream=${version%-*}
work=$(mktemp -d "${TMPDIR:-/tmp}/s3vfs-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/s3vfs-$upstream
mkdir "$src"

# the files to copy, NUL-separated
list_files() {
	if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$REPO" ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				# tracked but deleted in the working tree: skip
				[[ -e $REPO/$f || -L $REPO/$f ]] && printf '%s\0' "$f"
			done
	else
		(cd "$REPO" && find . \( -name 'build*' -o -name node_modules -o -name .git \
			-o -name __pycache__ -o -name .pytest_cache \) -prune -o \
			\( -type f -o -type l \) -printf '%P\0')
	fi
}
list_files | (cd "$REPO" && tar --null -T - -cf -) | tar -xf - -C "$src"
[[ -f $src/meson.build ]] || die "the copy of the tree in $src has no meson.build"
rm -rf "$src/debian"
cp -r "$src/packaging/debian" "$src/debian"

jobs=$(nproc 2>/dev/null || echo 1)
echo "build-deb.sh: dpkg-buildpackage -us -uc -b in $src" >&2
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
	dpkg-buildpackage -us -uc -b)

shopt -s nullglob
built=("$work"/*.deb "$work"/*.changes "$work"/*.buildinfo)
((${#built[@]})) || die "dpkg-buildpackage made no .deb"
mv -f "${built[@]}" "$out"/
for f in "${built[@]}"; do
	echo "$out/${f##*/}"
done
