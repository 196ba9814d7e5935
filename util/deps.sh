#!/bin/bash
# Installs the Debian packages the build, the demo and the tests need.
# Quiet and quick when everything is there.
#
#   util/deps.sh [run|bench]   "run" adds npm, for the demo's player page;
#                              "bench" Go and lib/pq, strace and valgrind

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

if [ "${1:-}" = run ] && ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
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

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2

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
"${sudo[@]}" apt-get -qq install -y --no-install-recommends "${missing[@]}" \
    > /dev/null

# Debian starts the services it installs: the demo and the tests run their
# own, and the stock ones would hold port 80 and 5432
if [[ " ${missing[*]} " == *" nginx "* ]]; then
    "${sudo[@]}" nginx -s quit 2>/dev/null || true
fi
