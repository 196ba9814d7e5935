#!/bin/bash
# make deb: builds the Debian package of the module with debhelper and
# nginx-dev's nginx_mod build system, from a copy of the files git does
# not ignore, into build/deb/.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/deb

# the nginx-rtmp headers, fetched as util/build.sh does
"$top/util/build.sh" > /dev/null
rtmp=$(ls -d "$top"/build/rtmp/*/ | head -n 1)
rtmp=${NGX_RTMP_SRC:-${rtmp%/}}

rm -rf "$out"
mkdir -p "$out/src"
(cd "$top" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$out/src")

(cd "$out/src" && NGX_RTMP_SRC=$rtmp dpkg-buildpackage -b -us -uc > "$out/build.log" 2>&1) \
    || { tail -n 30 "$out/build.log" >&2; echo "deb: error: dpkg-buildpackage failed" >&2; exit 1; }

ls "$out"/*.deb
