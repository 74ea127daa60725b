#!/bin/bash
# Builds kvmfleet_<version>_amd64.deb with dpkg-buildpackage from a copy of the source tree,
# then runs lintian on it (errors fail the build; warnings are justified in packaging/README.md).
#   packaging/build-deb.sh BUILD_DIR VERSION
# Prints the path of the .deb on its last line.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-build}")
version=${2:-$(cat "$top/VERSION")}
out=$build/deb
src=$out/kvmfleet-$version

rm -rf "$src"
mkdir -p "$src"
# Tracked and new files, not build outputs or node_modules.
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$top" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -x -C "$src"
else
        tar -C "$top" --exclude=./build --exclude='./build-*' --exclude=./var --exclude=node_modules -cf - . | tar -x -C "$src"
fi
cp -r "$top/packaging/debian" "$src/debian"
cp "$top/systemd/kvmfleet.sysusers" "$src/debian/kvmfleet.sysusers"
cp "$top/systemd/kvmfleet.tmpfiles" "$src/debian/kvmfleet.tmpfiles"
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")
cat >"$src/debian/changelog" <<CHANGELOG
kvmfleet ($version) unstable; urgency=medium

  * kvmfleet $version.

 -- kvmfleet maintainers <kvmfleet@example.org>  $date
CHANGELOG

rm -f "$out/kvmfleet_${version}_amd64.deb"
(cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$out/build-$version.log" 2>&1) || {
        tail -n 40 "$out/build-$version.log" >&2
        echo "dpkg-buildpackage failed; full log: $out/build-$version.log" >&2
        exit 1
}
deb=$out/kvmfleet_${version}_amd64.deb
[ -f "$deb" ] || { echo "no $deb after dpkg-buildpackage" >&2; exit 1; }
if command -v lintian >/dev/null; then
        lintian --fail-on error --suppress-tags-from-file "$top/packaging/lintian-suppressed" "$deb" \
                >"$out/lintian-$version.log" 2>&1 || {
                cat "$out/lintian-$version.log" >&2
                echo "lintian reports errors on $deb" >&2
                exit 1
        }
fi
# The unpacked tree is only needed while building.
rm -rf "$src"
echo "$deb"
