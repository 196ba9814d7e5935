#!/bin/bash
# Builds objs/ngx_rtmp_pgauth_module.so against the installed Debian nginx:
# nginx-dev's build tree configured with Debian's own flags (conf_flags), and
# the nginx-rtmp headers of the installed libnginx-mod-rtmp, fetched from
# Debian's source package, unless NGX_RTMP_SRC points at a checkout.
#
#   util/build.sh [configure]
#
# Environment: NGX_RTMP_SRC, PG_CONFIG, NGX_SRC (default /usr/share/nginx/src),
# VARIANT=asan (a build with AddressSanitizer, in objs/asan/),
# CFLAGS_EXTRA (added to the module's compile and link lines).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build
ngx_src=${NGX_SRC:-/usr/share/nginx/src}
tree=$build/nginx
out=$top/objs

case "${VARIANT:-}" in
    "") ;;
    asan)
        tree=$build/nginx-asan
        out=$top/objs/asan
        # and timers of at most 3 s: t/090 and t/201 time the rest of a
        # longer authorization
        CFLAGS_EXTRA="-fsanitize=address -fno-omit-frame-pointer \
                      ${CFLAGS_EXTRA:-}"
        CFLAGS_EXTRA+=" -DNGX_RTMP_PGAUTH_TIMER_MAX=3000"
        ;;
    *)
        echo "build: error: unknown VARIANT=$VARIANT" >&2
        exit 1
        ;;
esac

die() { echo "build: error: $*" >&2; exit 1; }

[ -f "$ngx_src/conf_flags" ] \
    || die "no nginx build tree in $ngx_src (install nginx-dev: make deps)"

mkdir -p "$build" "$out"

# the nginx-rtmp headers

rtmp_src() {
    if [ -n "${NGX_RTMP_SRC:-}" ]; then
        [ -f "$NGX_RTMP_SRC/ngx_rtmp.h" ] \
            || die "NGX_RTMP_SRC=$NGX_RTMP_SRC has no ngx_rtmp.h"
        (cd "$NGX_RTMP_SRC" && pwd)
        return
    fi

    local ver upstream dir apt mirror codename opts tarball
    ver=$(dpkg-query -W -f='${Version}' libnginx-mod-rtmp 2>/dev/null) \
        || die "libnginx-mod-rtmp is not installed (make deps)"
    upstream=${ver#*:}
    upstream=${upstream%-*}
    dir=$build/rtmp/$upstream

    if [ -f "$dir/ngx_rtmp.h" ]; then
        echo "$dir"
        return
    fi

    # Debian's source package, with a private apt state: no root needed
    # and nothing of the system's apt configuration is touched
    apt=$build/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir"

    mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources \
             | awk '{print $2}' | grep -v security | head -n 1 || true)
    if [ -z "$mirror" ]; then
        mirror=$(grep -hs '^deb ' /etc/apt/sources.list \
                 | awk '{print $2}' | grep -v security | head -n 1 || true)
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")

    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
         "$mirror $codename main" > "$apt/sources.list"

    opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
          -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$apt/lists"
          -o "Dir::Cache=$apt/cache"
          -o "Debug::NoLocking=1"
          -o "APT::Sandbox::User=$(id -un)")

    echo "build: fetching the source of libnginx-mod-rtmp $ver" >&2
    apt-get "${opts[@]}" -qq update >&2 \
        || die "apt-get update for deb-src failed"
    (cd "$apt" && apt-get "${opts[@]}" -qq source --tar-only \
                          "libnginx-mod-rtmp=$ver" >&2) \
        || die "apt-get source --tar-only libnginx-mod-rtmp=$ver failed"

    tarball=$(ls "$apt"/libnginx-mod-rtmp_*.orig.tar.* | head -n 1)
    tar -xf "$tarball" -C "$dir" --strip-components=1
    rm -f "$apt"/libnginx-mod-rtmp_*

    [ -f "$dir/ngx_rtmp.h" ] || die "no ngx_rtmp.h in $tarball"
    echo "$dir"
}

configure() {
    local rtmp
    rtmp=$(rtmp_src)

    rm -rf "$tree"
    cp -a "$ngx_src" "$tree"

    echo "build: configuring nginx $(dpkg-query -W -f='${Version}' nginx-dev)" \
         "with nginx-rtmp from $rtmp" >&2
    (
        cd "$tree"
        # shellcheck disable=SC1091
        . ./conf_flags
        NGX_RTMP_SRC=$rtmp ./configure "${NGX_CONF_FLAGS[@]}" \
            --with-cc-opt="-g -O2 -Werror ${CFLAGS_EXTRA:-}" \
            --with-ld-opt="${CFLAGS_EXTRA:-}" \
            --add-dynamic-module="$top" > "$tree.configure.log" 2>&1
    ) || { tail -n 20 "$tree.configure.log" >&2; die "configure failed"; }

    echo "$rtmp ${CFLAGS_EXTRA:-}" > "$tree/configured"
}

want="$(rtmp_src) ${CFLAGS_EXTRA:-}"

# a new source file in config, or other headers or flags: configure again
if [ "${1:-}" = configure ] || [ ! -f "$tree/objs/Makefile" ] \
   || [ "$top/config" -nt "$tree/objs/Makefile" ] \
   || [ "$(cat "$tree/configured" 2>/dev/null)" != "$want" ]
then
    configure
fi

make -s -C "$tree" -f objs/Makefile modules
# a new file, not the old one rewritten: running nginx processes map it
cp "$tree/objs/ngx_rtmp_pgauth_module.so" "$out/.ngx_rtmp_pgauth_module.so"
mv -f "$out/.ngx_rtmp_pgauth_module.so" "$out/ngx_rtmp_pgauth_module.so"
echo "build: ${out#$top/}/ngx_rtmp_pgauth_module.so"
