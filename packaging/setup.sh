#!/bin/bash
# setup.sh — install everything s3vfs needs to build, test and benchmark, on Debian 12 (bookworm),
# as root. Idempotent: when everything is present it changes nothing and takes about a second.
#
#   packaging/setup.sh            Debian packages (apt) + pinned npm packages (tests/servers)
#
# Debian packages: only the missing ones are installed, and `apt-get update` runs only then.
# npm: `npm ci` in tests/servers (DynamoDB Local, pinned by package-lock.json), re-run only when
# node_modules is missing or package-lock.json changed (stamp in node_modules/).
# Works without a terminal (CI=true, no stdin).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEBIAN_FRONTEND=noninteractive

BUILD_PKGS=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev clang-format valgrind
	libcurl4-openssl-dev libssl-dev libxml2-dev libsqlite3-dev libfuse3-dev fuse3 libjansson-dev
	attr sqlite3 curl)
SERVER_PKGS=(ceph-mon ceph-osd radosgw ceph-common iproute2 util-linux)
TEST_PKGS=(python3-pytest python3-boto3 s3fs rclone nginx fio wrk hyperfine
	dpkg-dev debhelper fakeroot lintian groff-base man-db systemd)

log() { echo "setup.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (it installs Debian packages)"
command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query)"

installed() { # PKG...: true if all are installed
	local st
	st=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "$@" 2>/dev/null) || return 1
	! grep -qv '^ii' <<<"$st"
}

missing=()
for p in "${BUILD_PKGS[@]}" "${SERVER_PKGS[@]}" "${TEST_PKGS[@]}"; do
	installed "$p" || missing+=("$p")
done

# Java: DynamoDB Local needs 17 or newer. Any installed JRE that new will do (e.g.
# openjdk-17-jre-headless without the default-jre-headless metapackage).
java_ok() {
	command -v java >/dev/null || return 1
	local v
	v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
	[[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 17))
}
java_ok || missing+=(default-jre-headless)

# Node/npm: a node from elsewhere (e.g. NodeSource's nodejs, which bundles npm) is fine; asking
# apt for Debian's npm next to it would conflict.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	installed nodejs || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
fi

if ((${#missing[@]})); then
	log "installing: ${missing[*]}"
	apt-get update -q
	apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
fi

# npm packages for the test servers
SERVERS=$REPO/tests/servers
STAMP=$SERVERS/node_modules/.s3vfs-setup-stamp
want=$(cat "$SERVERS/package.json" "$SERVERS/package-lock.json" | sha256sum | cut -d' ' -f1)
jar=$SERVERS/node_modules/amplify-dynamodb-simulator/emulator/DynamoDBLocal.jar
if [[ ! -e $jar || ! -e $STAMP || $(<"$STAMP") != "$want" ]]; then
	log "npm ci in tests/servers"
	(cd "$SERVERS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error </dev/null)
	[[ -e $jar ]] || die "npm ci did not produce $jar"
	echo "$want" >"$STAMP"
fi

log "ok"
