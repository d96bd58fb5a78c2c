#!/bin/bash
# The README's test command: install what is missing, build, run every test.
#
#   gcc build with -Werror        -> unit tests (meson test)
#   clang ASan+UBSan build        -> unit tests, then the integration tests (pytest)
#                                    drive the sanitized binaries
#   valgrind                      -> unit tests of the gcc build
#   clang libFuzzer build         -> each fuzz target for a bounded time (tests/fuzz/run.sh)
#   clang-format                  -> every C file
#
# Idempotent; fast when everything is installed and built. Exits non-zero on
# any failure, and when pytest collects nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash packaging/setup.sh

step() { printf '\n=== %s\n' "$*"; }

step "format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror $files

step "gcc build (werror)"
[ -d build ] || meson setup build -Dwerror=true >/dev/null
ninja -C build

step "clang ASan+UBSan build"
[ -d build-asan ] || CC=clang meson setup build-asan -Dwerror=true \
	-Db_sanitize=address,undefined -Db_lundef=false >/dev/null
ninja -C build-asan

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

step "unit tests (gcc)"
meson test -C build --print-errorlogs

step "unit tests (ASan+UBSan)"
meson test -C build-asan --print-errorlogs

step "unit tests (valgrind)"
meson test -C build --print-errorlogs --wrapper \
	'valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite -q' \
	--timeout-multiplier 10

step "fuzz targets (libFuzzer, bounded; regressions replayed)"
bash tests/fuzz/run.sh "${S3VFS_FUZZ_SECONDS:-20}"

step "integration tests (pytest, ASan build)"
export S3VFS_BUILD="$top/build-asan"
set +e
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
	echo "pytest collected no tests: that is a failure" >&2
	exit 1
fi
exit $rc
