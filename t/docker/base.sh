#!/bin/bash
# t/190: debian:SUITE for a Docker engine that reaches no registry, as
# root: util/chroot.sh's debootstrap --variant=minbase (kept in build/)
# with the network's CA certificates (npm's registry is reached through a
# TLS proxy), imported.  Nothing is done when the engine has the image
# already.
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

# util/chroot.sh's debootstrap, made once and kept in build/
SUITE=$suite "$top/util/chroot.sh" tarball \
    || die "no debootstrap of $suite"
tar -C "$tmp" -xf "$top/build/chroot-$suite.tar"

if compgen -G '/usr/local/share/ca-certificates/*' > /dev/null; then
    cp -r /usr/local/share/ca-certificates/. \
          "$tmp/usr/local/share/ca-certificates/"
    chroot "$tmp" update-ca-certificates > /dev/null 2>&1
fi

# what a container does not need of a chroot's: its own resolver, hosts
rm -f "$tmp/etc/resolv.conf" "$tmp/etc/hostname"

tar -C "$tmp" -c . | $docker import -c 'CMD ["bash"]' - "$tag" > /dev/null
echo "base.sh: $tag imported from a debootstrap of $suite"
