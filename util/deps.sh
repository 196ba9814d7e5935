#!/bin/bash
# Installs the Debian packages a make target needs.  Quiet and quick when
# everything is there.
#
#   util/deps.sh build   the module: compiler, nginx-dev, nginx-rtmp, libpq
#   util/deps.sh run     build + PostgreSQL, npm, nginx's stream module and
#                        openssl, for make run
#   util/deps.sh deb     build + debhelper
#   util/deps.sh fuzz    build + clang and its libFuzzer runtime
#   util/deps.sh [test]  all of these + ffmpeg, Perl's DBD::Pg, fail2ban,
#                        pgbouncer and chromium,
#                        for the tests (if chromium cannot be installed, the
#                        browser test is skipped and says so)
#   util/deps.sh bench   test + Go and lib/pq, strace and valgrind

set -euo pipefail

mode=${1:-test}

build=(gcc make libc6-dev pkg-config xz-utils ca-certificates
       nginx nginx-dev libnginx-mod-rtmp libpq-dev libssl-dev)
# the stream module and openssl: make run's RTMPS (RTMPS_PORT)
run=(postgresql procps libnginx-mod-stream openssl)
# dpkg-buildpackage checks for build-essential itself
deb=(build-essential debhelper dpkg-dev)
# and clang's libFuzzer runtime, named after the suite's clang: see fuzz_rt
fuzz=(clang)
# fail2ban: t/100 runs its fail2ban-regex on the limiter's log; pgbouncer:
# t/135 publishes through it
test=("${run[@]}" "${deb[@]}" "${fuzz[@]}" ffmpeg perl libdbd-pg-perl
      fail2ban pgbouncer)

case "$mode" in
    build) pkgs=("${build[@]}") ;;
    run)   pkgs=("${build[@]}" "${run[@]}") ;;
    deb)   pkgs=("${build[@]}" "${deb[@]}") ;;
    fuzz)  pkgs=("${build[@]}" "${fuzz[@]}") ;;
    test)  pkgs=("${build[@]}" "${test[@]}") ;;
    bench) pkgs=("${build[@]}" "${test[@]}" golang-go
                 golang-github-lib-pq-dev strace valgrind wrk) ;;
    *)     echo "deps: unknown target \"$mode\"" >&2; exit 2 ;;
esac

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null \
        | grep -q "install ok installed"
}

missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done

# libFuzzer is in libclang-rt-N-dev, which clang-N only recommends, N the
# suite's clang (14 in bookworm, 19 in trixie): the one that the installed
# clang depends on
fuzz_rt() {
    local v
    v=$(dpkg-query -W -f='${Depends}' clang 2>/dev/null \
        | grep -o '^clang-[0-9]*' || true)
    [ -n "$v" ] && echo "libclang-rt-${v#clang-}-dev"
}

# (when clang itself is missing, after it)
rt=
case "$mode" in
    fuzz|test|bench)
        if installed clang; then
            rt=$(fuzz_rt) || { echo "deps: error: no clang-N in the" \
                                    "Depends of clang" >&2; exit 1; }
            installed "$rt" || missing+=("$rt")
        else
            rt=after-clang
        fi ;;
esac

# npm for hls.js (and playwright-core); nodejs may come from elsewhere
case "$mode" in
    run|test|bench)
        if ! command -v npm >/dev/null 2>&1; then
            missing+=(npm)
        fi ;;
esac

# the browser test's chromium: wanted, not required
browser=
if [ "$mode" = test ] && [ ! -x /usr/bin/chromium ]; then
    browser=chromium
fi

[ ${#missing[@]} -eq 0 ] && [ -z "$browser" ] && exit 0

# the browser alone is not worth a password prompt
if [ ${#missing[@]} -eq 0 ] && [ "$(id -u)" -ne 0 ] \
   && ! sudo -n true 2>/dev/null
then
    echo "deps: chromium is not installed (as root: apt-get install" \
         "chromium): t/170-player.t will be skipped" >&2
    exit 0
fi

echo "deps: installing ${missing[*]} $browser" >&2

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "deps: error: as root, run: apt-get install ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

"${sudo[@]}" apt-get -qq update >&2
if [ ${#missing[@]} -gt 0 ]; then
    "${sudo[@]}" apt-get -qq install -y --no-install-recommends \
        "${missing[@]}" > /dev/null
fi
if [ "$rt" = after-clang ]; then
    rt=$(fuzz_rt) || { echo "deps: error: no clang-N in the Depends of" \
                            "clang" >&2; exit 1; }
    if ! installed "$rt"; then
        echo "deps: installing $rt" >&2
        "${sudo[@]}" apt-get -qq install -y --no-install-recommends \
            "$rt" > /dev/null
    fi
fi
if [ -n "$browser" ] \
   && ! "${sudo[@]}" apt-get -qq install -y --no-install-recommends \
            chromium > /dev/null
then
    echo "deps: chromium could not be installed: t/170-player.t will be" \
         "skipped" >&2
fi

# Debian starts the services it installs: the demo and the tests run their
# own, and the stock ones would hold port 80 and 5432
if [[ " ${missing[*]} " == *" nginx "* ]]; then
    "${sudo[@]}" nginx -s quit 2>/dev/null || true
fi
