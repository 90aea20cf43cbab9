#!/usr/bin/env bash
# Build the Debian package pmxcfs-py into dist/ and check it with lintian (Debian 12, as root).
# Usage: scripts/build-deb.sh     -> dist/pmxcfs-py_<version>_all.deb
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt-install.sh build-essential debhelper dh-python python3 lintian

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
