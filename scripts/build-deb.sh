#!/bin/sh
# Build kzproxy's .deb from the working tree, uncommitted changes included,
# and leave it in OUTDIR (default: the current directory).
#
#   scripts/build-deb.sh [OUTDIR]        (or: make deb, from a build directory)
#
# The build runs in a temporary copy of the tree: dh_autoreconf rewrites
# configure and the Makefile.in files, which the developers' own build
# directories (_build*) depend on, and the copy leaves out _build*, .git and
# whatever .gitignore names (node_modules, the Kafka test bed's jars, ...),
# so none of it reaches the package. Needs debhelper, dpkg-dev and fakeroot
# (scripts/deps.sh installs them) and the Build-Depends of debian/control.
# KZ_DEB_JOBS sets the parallel jobs (default 2).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
jobs=${KZ_DEB_JOBS:-2}

for t in dpkg-buildpackage dh fakeroot; do
  command -v "$t" >/dev/null 2>&1 || {
    echo "build-deb: $t not found: install debhelper, dpkg-dev and fakeroot (scripts/deps.sh does)" >&2
    exit 1
  }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kzproxy-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
src="$work/kzproxy"
mkdir "$src"

# The files to package: under git, the tracked and the new files that are not
# ignored (deleted ones skipped); else the tree minus the usual build output.
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$top" && git ls-files -co --exclude-standard | while IFS= read -r f; do
     [ -e "$f" ] && printf '%s\n' "$f"
   done) > "$work/files"
  (cd "$top" && tar -cf - -T "$work/files") | tar -xf - -C "$src"
else
  (cd "$top" && tar -cf - --exclude='./_build*' --exclude=./.git --exclude=node_modules \
     --exclude=./tests/kafka/target --exclude=./tests/clients/pyvenv --exclude=./autom4te.cache \
     --exclude=./configure --exclude=./config.status --exclude='*.o' --exclude='*.a' .) |
    tar -xf - -C "$src"
fi
for d in debian configure.ac Makefile.am proxy/px_main.c; do
  [ -e "$src/$d" ] || { echo "build-deb: $d missing from the copy of $top" >&2; exit 1; }
done

echo "build-deb: dpkg-buildpackage -us -uc -b -j$jobs in $src"
start=$(date +%s)
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -us -uc -b -j"$jobs") > "$work/build.log" 2>&1 || {
  grep -E -B2 -A6 'error:|Error [0-9]' "$work/build.log" | head -n 60 >&2 || tail -n 30 "$work/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (its errors are above)" >&2
  exit 1
}
end=$(date +%s)
found=0
for f in "$work"/*.deb; do
  [ -e "$f" ] || continue
  cp "$f" "$out/"
  echo "build-deb: $out/$(basename "$f") ($((end - start)) s)"
  found=1
done
[ "$found" = 1 ] || { echo "build-deb: dpkg-buildpackage made no .deb" >&2; exit 1; }
