#!/bin/bash
# Installs the Debian packages the build, the demo and the tests need.
# Quiet and quick when everything is there.
#
#   util/deps.sh [run|test|bench]
#                   "run" adds npm, for the demo's player page; "test" npm
#                   and chromium, for the browser test (if chromium cannot be
#                   installed, that test is skipped and says so); "bench" Go
#                   and lib/pq, strace and valgrind

set -euo pipefail

pkgs=(gcc make libc6-dev pkg-config xz-utils ca-certificates
      nginx nginx-dev libnginx-mod-rtmp
      libpq-dev libssl-dev postgresql
      ffmpeg perl libdbd-pg-perl procps
      clang libclang-rt-14-dev debhelper dpkg-dev)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
         | grep -q "install ok installed"
    then
        missing+=("$p")
    fi
done

case "${1:-}" in
    run|test)
        if ! command -v npm >/dev/null 2>&1; then
            missing+=(npm)
        fi ;;
esac

# the browser test's chromium: wanted, not required
browser=
if [ "${1:-}" = test ] && [ ! -x /usr/bin/chromium ]; then
    browser=chromium
fi

extra=()
case "${1:-}" in
    bench) extra=(golang-go golang-github-lib-pq-dev strace valgrind) ;;
esac

if [ ${#extra[@]} -gt 0 ]; then
    for p in "${extra[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
             | grep -q "install ok installed"
        then
            missing+=("$p")
        fi
    done
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
