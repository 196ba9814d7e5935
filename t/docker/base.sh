#!/bin/bash
# t/190: debian:SUITE for a Docker engine that reaches no registry, as
# root: a debootstrap --variant=minbase (the one util/chroot.sh keeps in
# build/, when there is one) with the network's CA certificates (npm's
# registry is reached through a TLS proxy), imported.  Nothing is done when
# the engine has the image already.
#
#   t/docker/base.sh [SUITE]     DOCKER: the docker command

set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd -P)
suite=${1:-bookworm}
docker=${DOCKER:-docker}
tag=debian:$suite

if $docker image inspect "$tag" > /dev/null 2>&1; then
    exit 0
fi

die() { echo "base.sh: error: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf --one-file-system "$tmp"' EXIT
# mktemp -d makes it 0700: the image's / would be, and its users locked out
chmod 755 "$tmp"

if [ -f "$top/build/chroot-$suite.tar" ]; then
    tar -C "$tmp" -xf "$top/build/chroot-$suite.tar"
else
    mirror=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources \
             | awk '{print $2}' | grep -v security | head -n 1 || true)
    debootstrap --variant=minbase --include=ca-certificates "$suite" \
        "$tmp" "${mirror:-http://deb.debian.org/debian}" \
        > "$tmp.log" 2>&1 \
        || { tail -n 20 "$tmp.log" >&2; die "debootstrap failed"; }
    rm -f "$tmp.log"
fi

if compgen -G '/usr/local/share/ca-certificates/*' > /dev/null; then
    cp -r /usr/local/share/ca-certificates/. \
          "$tmp/usr/local/share/ca-certificates/"
    chroot "$tmp" update-ca-certificates > /dev/null 2>&1
fi

# what a container does not need of a chroot's: its own resolver, hosts
rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"

tar -C "$tmp" -c . | $docker import -c 'CMD ["bash"]' - "$tag" > /dev/null
echo "base.sh: $tag imported from a debootstrap of $suite"
