#!/bin/sh
# Builds authsvc with Debian's Go and lib/pq, offline, in GOPATH mode:
#
#     apt-get install -y golang-go golang-github-lib-pq-dev
#     t/bench/authsvc/build.sh [OUTDIR]        # default: build/authsvc
#
# The binary is OUTDIR/authsvc; the Go build cache stays in OUTDIR/.gocache.
# Works as root or as any user who may write OUTDIR.

set -eu

src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/../../.." && pwd)

out=${1:-"$top/build/authsvc"}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ ! -w "$out" ]; then
    echo "build.sh: $out is not writable" >&2
    exit 1
fi

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: go not found: apt-get install -y golang-go" >&2
    exit 1
fi
if [ ! -d /usr/share/gocode/src/github.com/lib/pq ]; then
    echo "build.sh: lib/pq not found:" \
         "apt-get install -y golang-github-lib-pq-dev" >&2
    exit 1
fi

mkdir -p "$out/.gocache" "$out/.gopath"

# No modules, no proxy, no downloads, no user configuration: only the
# standard library and what Debian put in /usr/share/gocode.
export GO111MODULE=off
export GOPATH="$out/.gopath:/usr/share/gocode"
export GOCACHE="$out/.gocache"
export GOENV=off
export GOFLAGS=
export GOPROXY=off
export GOTOOLCHAIN=local
export CGO_ENABLED=0
if [ -z "${HOME:-}" ] || [ ! -w "${HOME:-/nonexistent}" ]; then
    export HOME="$out"
fi

cd "$src"
go build -trimpath -o "$out/authsvc.tmp" .
mv -f "$out/authsvc.tmp" "$out/authsvc"
echo "$out/authsvc"
