#!/bin/sh
# The Debian package (issue 16, item 4): build the .deb from the working tree
# with dpkg-buildpackage (scripts/build-deb.sh: a temporary copy of the tree,
# no sanitizers, -j2, the project's tests not run), check what it holds,
# install it with dpkg -i, run /usr/bin/kzproxy --version and --check-config
# on the installed /etc/kzproxy/kzproxy.json (as root and as the package's
# kzproxy user), systemd-analyze verify the installed units, then remove and
# purge it. Needs root (dpkg -i) and scripts/deps.sh's packaging tools; skips
# (77) when not root or when a kzproxy package is already installed (it would
# be replaced and removed). Prints the build time. KZ_TEST_DEB=FILE tests
# that package instead of building one.
set -eu

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
name=test_deb.sh
fail() { echo "$name: FAIL: $*"; exit 1; }
skip() { echo "$name: SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root to install the package with dpkg -i"
for t in dpkg-buildpackage dh fakeroot dpkg-deb; do
  command -v "$t" >/dev/null 2>&1 || fail "$t not found: run scripts/deps.sh (debhelper, dpkg-dev, fakeroot)"
done
if dpkg-query -W -f='${Status}' kzproxy 2>/dev/null | grep -q "installed"; then
  skip "a kzproxy package is already installed on this machine; this test would replace and remove it"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kz-test-deb.XXXXXX")
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then
    dpkg --purge kzproxy >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -n "${KZ_TEST_DEB:-}" ]; then
  # A package built already (e.g. by make deb): test it instead of building.
  deb=$KZ_TEST_DEB
  [ -f "$deb" ] || fail "KZ_TEST_DEB=$deb: no such file"
  echo "$name: testing $deb (KZ_TEST_DEB), not building"
else
  start=$(date +%s)
  sh "$top_srcdir/scripts/build-deb.sh" "$work" > "$work/build.out" 2>&1 || {
    cat "$work/build.out"
    fail "the package did not build"
  }
  secs=$(( $(date +%s) - start ))
  deb=$(ls "$work"/kzproxy_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || fail "no kzproxy_*.deb after the build: $(cat "$work/build.out")"
  echo "$name: built $(basename "$deb") in ${secs} s ($(stat -c %s "$deb") bytes)"
fi

# What the package holds.
dpkg-deb -c "$deb" > "$work/contents"
for f in ./usr/bin/kzproxy ./etc/kzproxy/kzproxy.json ./lib/systemd/system/kzproxy.service \
         ./lib/systemd/system/kzproxy.socket ./usr/share/doc/kzproxy/README.md; do
  grep -q " $f\$" "$work/contents" || fail "the package has no $f: $(cat "$work/contents")"
done
if grep -E '_build|/tests/|\.o$|\.a$|node_modules' "$work/contents"; then
  fail "the package holds build or test files (above)"
fi
dpkg-deb -I "$deb" conffiles | grep -qx /etc/kzproxy/kzproxy.json ||
  fail "/etc/kzproxy/kzproxy.json is not a conffile: $(dpkg-deb -I "$deb" conffiles 2>&1)"
echo "$name: contents: $(wc -l < "$work/contents") entries; /usr/bin/kzproxy, the config (conffile), both units, README"

# Install it.
installed=1
dpkg -i "$deb" > "$work/install.out" 2>&1 || { cat "$work/install.out"; fail "dpkg -i failed"; }
v=$(/usr/bin/kzproxy --version) || fail "/usr/bin/kzproxy --version failed"
want=$(sed -n 's/^AC_INIT(\[kzproxy\], \[\([^]]*\)\].*/\1/p' "$top_srcdir/configure.ac")
[ "$v" = "kzproxy $want" ] || fail "/usr/bin/kzproxy --version printed '$v', want 'kzproxy $want'"
echo "$name: dpkg -i: ok; /usr/bin/kzproxy --version: $v"
out=$(kzproxy --check-config /etc/kzproxy/kzproxy.json) || fail "kzproxy --check-config /etc/kzproxy/kzproxy.json: $out"
echo "$name: $out"

# The dedicated user, and the config readable by it and no one else.
getent passwd kzproxy >/dev/null || fail "postinst made no kzproxy user"
perm=$(stat -c '%U:%G %a' /etc/kzproxy/kzproxy.json)
[ "$perm" = "root:kzproxy 640" ] || fail "/etc/kzproxy/kzproxy.json is $perm, want root:kzproxy 640"
out=$(setpriv --reuid=kzproxy --regid=kzproxy --init-groups /usr/bin/kzproxy --check-config /etc/kzproxy/kzproxy.json 2>&1) ||
  fail "the kzproxy user cannot read the config: $out"
echo "$name: user kzproxy ($(getent passwd kzproxy | cut -d: -f3)), config $perm, readable by kzproxy"

# The installed units.
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify /lib/systemd/system/kzproxy.socket /lib/systemd/system/kzproxy.service 2>&1) ||
    fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
  echo "$name: systemd-analyze verify kzproxy.socket kzproxy.service: clean"
else
  echo "$name: systemd-analyze not installed (scripts/deps.sh installs systemd): units not verified here"
fi

# Remove, then purge.
dpkg -r kzproxy > "$work/remove.out" 2>&1 || { cat "$work/remove.out"; fail "dpkg -r failed"; }
[ ! -e /usr/bin/kzproxy ] || fail "/usr/bin/kzproxy is still there after dpkg -r"
[ -e /etc/kzproxy/kzproxy.json ] || fail "dpkg -r removed the conffile (only purge should)"
dpkg --purge kzproxy > "$work/purge.out" 2>&1 || { cat "$work/purge.out"; fail "dpkg --purge failed"; }
[ ! -e /etc/kzproxy/kzproxy.json ] || fail "/etc/kzproxy/kzproxy.json is still there after dpkg --purge"
installed=0
echo "$name: dpkg -r (conffile kept), dpkg --purge (conffile gone): ok"
echo "$name: PASS"
