#!/usr/bin/env bash
# Build the Debian package pmxcfs-py into dist/ and check it with lintian (Debian 12, as root).
# Usage: scripts/build-deb.sh     -> dist/pmxcfs-py_<version>_all.deb
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential debhelper dh-python python3 lintian)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing build packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

version=$(dpkg-parsechangelog -S Version)
# dpkg-buildpackage writes its results beside the source tree; they are moved into dist/
rm -f ../pmxcfs-py_"$version"_*
dpkg-buildpackage -us -uc -b
rm -rf dist
mkdir dist
mv ../pmxcfs-py_"$version"_* dist/
debian/rules clean  # the staging tree under debian/ is not left behind
lintian --fail-on error --info dist/pmxcfs-py_"$version"_all.deb
echo "built dist/pmxcfs-py_${version}_all.deb"
