#!/bin/bash
# make test-chroot, make run-chroot: the two commands of the README on a
# pristine Debian, as root: a debootstrap --variant=minbase chroot of SUITE
# with git and make, a clone of this checkout's HEAD (commit first:
# uncommitted changes are not in it), then make test, or make run with a
# publish through it.  The chroot's network is the machine's.
#
#   util/chroot.sh test   make test (TEST=t/020-publish.t for one file)
#   util/chroot.sh run    make run: it installs, builds, starts and prints
#                         the OBS settings; ffmpeg publishes to them for a
#                         few seconds, the playlist is fetched, Ctrl-C
#   util/chroot.sh tarball
#                         only the debootstrap, kept in build/ (t/190
#                         makes its debian image of it)
#
# Environment: SUITE (bookworm; or trixie), TEST.  The debootstrap result is
# kept in build/chroot-$SUITE.tar, so later runs start in seconds; the
# chroot of the last run stays in build/chroot-$SUITE for a look at it, its
# output in build/chroot-$SUITE-$mode.log.

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd -P)
mode=${1:-test}
suite=${SUITE:-bookworm}
root=$top/build/chroot-$suite
tarball=$top/build/chroot-$suite.tar
log=$top/build/chroot-$suite-$mode.log
src=/root/ngx_rtmp_pgauth
me="chroot $suite"

die() { echo "$me: error: $*" >&2; exit 1; }

case "$mode" in
    test|run|tarball) ;;
    *) die "unknown check \"$mode\" (test, run or tarball)" ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "$me: debootstrap, chroot and mounts need root: nothing done"
    exit 0
fi

# the machine's apt mirror, and its security mirror if it has one
sources() {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
    grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'
}
mirror=$(sources | grep -v security | head -n 1 || true)
security=$(sources | grep security | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
updates=
if grep -hqs -- '-updates' /etc/apt/sources.list.d/*.sources \
                         /etc/apt/sources.list
then
    updates=$suite-updates
fi

if ! command -v debootstrap >/dev/null 2>&1; then
    echo "$me: installing debootstrap" >&2
    apt-get -qq update >&2
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y \
        --no-install-recommends debootstrap > /dev/null
fi

# one check of a suite at a time: they share its folder
mkdir -p "$top/build"
exec 9> "$root.lock"
flock -n 9 || die "another check of $suite is running"

# everything mounted under the chroot, deepest first
mounts() {
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' \
        /proc/mounts | sort -r
}

# what runs inside the chroot (make run's PostgreSQL and nginx when a check
# failed half-way): by pid, what has the chroot as its root
stray() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
    done
    return 0
}

# stops what runs inside, unmounts everything
release() {
    local pids m
    pids=$(stray)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -TERM $pids 2>/dev/null || true
        sleep 2
        pids=$(stray)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        sleep 0.5
    fi
    for m in $(mounts); do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done
}

cleanup() {
    trap - INT TERM EXIT
    release
}
trap cleanup EXIT
trap 'echo "$me: interrupted" >&2; exit 130' INT TERM

if [ ! -f "$tarball" ]; then
    echo "$me: debootstrap from $mirror (once: kept in" \
         "${tarball#"$top"/})" >&2
    rm -rf --one-file-system "$root.new"
    mkdir -p "$root.new"
    # a folder made by mktemp -d would be 0700, and PostgreSQL's user could
    # not reach anything in the chroot
    chmod 755 "$root.new"
    if ! debootstrap --variant=minbase --include=git,make,ca-certificates \
             "$suite" "$root.new" "$mirror" > "$root.debootstrap.log" 2>&1
    then
        tail -n 20 "$root.debootstrap.log" >&2
        die "debootstrap failed (log: ${root#"$top"/}.debootstrap.log)"
    fi
    tar -C "$root.new" -cf "$tarball.new" .
    mv "$tarball.new" "$tarball"
    rm -rf --one-file-system "$root.new"
fi

[ "$mode" != tarball ] || exit 0

# a fresh tree: never remove it while something of the machine's is
# mounted in it
[ -z "$(mounts)" ] || release
[ -z "$(mounts)" ] || die "still mounted under $root: $(mounts | xargs)"
rm -rf --one-file-system "$root"

mkdir -p "$root"
tar -C "$root" -xf "$tarball"
chmod 755 "$root"

# apt from the machine's mirrors, for the chroot's suite
rm -f "$root/etc/apt/sources.list"
{
    echo "Types: deb"
    echo "URIs: $mirror"
    echo "Suites: $suite${updates:+ $updates}"
    echo "Components: main"
    echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    if [ -n "$security" ]; then
        echo
        echo "Types: deb"
        echo "URIs: $security"
        echo "Suites: $suite-security"
        echo "Components: main"
        echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    fi
} > "$root/etc/apt/sources.list.d/debian.sources"

# the network's CA certificates (npm's registry is reached through a TLS
# proxy), the machine's name service
if compgen -G '/usr/local/share/ca-certificates/*' > /dev/null; then
    cp -r /usr/local/share/ca-certificates/. \
          "$root/usr/local/share/ca-certificates/"
fi
cp /etc/resolv.conf /etc/hosts "$root/etc/"

# the chroot shares the machine's ports: the services that packages start
# (nginx on port 80, PostgreSQL on 5432) stay off, as in a container
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

mount -t proc proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 shm "$root/dev/shm"

in_chroot() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive TERM=dumb "$@" 9>&-
}

out=$(in_chroot update-ca-certificates 2>&1) || die "$out"

git -C "$top" rev-parse -q --verify HEAD > /dev/null || die "no commit"
git clone -q "$top" "$root$src"
commit=$(git -C "$root$src" log -1 --format='%h %s' | cut -c1-60)
if [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
    echo "$me: uncommitted changes of $top are not in the clone" >&2
fi

debian=$(cat "$root/etc/debian_version")
echo "$me: Debian $debian, make $mode of $commit" >&2
echo "$me: output in ${log#"$top"/}" >&2

# the versions the check ran with
versions() {
    # shellcheck disable=SC2016
    in_chroot dpkg-query -W -f='${Package} ${Version}\n' nginx \
        libnginx-mod-rtmp postgresql nodejs clang chromium 2>/dev/null \
        | sed "s/^/$me: /" || true
    if [ -f "$root$src/node_modules/playwright-core/package.json" ]; then
        echo "$me: playwright-core $(sed -n \
            's/^ *"version": "\(.*\)",$/\1/p' \
            "$root$src/node_modules/playwright-core/package.json")"
    fi
}

start=$SECONDS

if [ "$mode" = test ]; then
    rc=0
    make=(make test)
    [ -z "${TEST:-}" ] || make+=("TEST=$TEST")
    # in the background: a Ctrl-C is acted on at once, not after apt-get,
    # which holds it while dpkg runs
    (in_chroot bash -c "cd $src && ${make[*]@Q}" < /dev/null 2>&1 \
         | tee "$log") &
    wait $! || rc=$?
    secs=$((SECONDS - start))
    versions
    grep -E '^(Files=|Result:|fuzz: |stat::number_of_executed)' "$log" \
        | sed "s/^/$me: /" || true
    if [ "$rc" -eq 0 ]; then
        echo "$me: make test passed in $((secs / 60)) min $((secs % 60)) s"
    else
        echo "$me: make test FAILED (exit $rc) after $((secs / 60)) min" \
             "$((secs % 60)) s"
    fi
    exit "$rc"
fi

# make run, in the background as from a terminal: its own process group,
# for the Ctrl-C
setsid chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive TERM=dumb \
    bash -c "cd $src && exec make run" < /dev/null > "$log" 2>&1 9>&- &
run=$!

# the installs and the build come first: minutes on a pristine system
key=
for _ in $(seq 1 900); do
    key=$(sed -n 's/^ *Stream Key: *//p' "$log")
    [ -n "$key" ] && break
    kill -0 "$run" 2>/dev/null || break
    sleep 1
done
if [ -z "$key" ]; then
    tail -n 30 "$log" >&2
    die "make run printed no stream key"
fi
server=$(sed -n 's/^ *Server: *//p' "$log")
watch=$(grep -m 1 -o 'http://[^ ]*/#demo' "$log" || true)
secs=$((SECONDS - start))
echo "$me: make run is up after $secs s: server $server, key $key," \
     "watch $watch"
if [ -z "$server" ] || [ -z "$watch" ]; then
    die "no server or watch URL in the output"
fi

# the publisher: not something make run installs
in_chroot apt-get -qq install -y --no-install-recommends ffmpeg \
    > /dev/null 2>&1 || die "apt-get install ffmpeg failed"

ok=1
if in_chroot ffmpeg -nostdin -loglevel error -re \
       -f lavfi -i testsrc=size=640x360:rate=30 -f lavfi -i sine \
       -t 8 -c:v libx264 -preset veryfast -g 30 -c:a aac \
       -f flv "$server/$key" >> "$log" 2>&1 \
   && grep -q 'pgauth: allowed app="live" name="demo"' "$log"
then
    echo "$me: ffmpeg published 8 s, the module allowed it:"
    grep -o 'pgauth: allowed [^,]*' "$log" | sed "s/^/$me:   /"
else
    echo "$me: ffmpeg FAILED to publish"
    ok=
fi

# the playlist the watch URL plays, through make run's nginx
http=${watch#http://}
http=${http%%/*}
playlist=$(exec 3<>"/dev/tcp/${http%:*}/${http#*:}" \
           && printf 'GET /hls/demo.m3u8 HTTP/1.0\r\n\r\n' >&3 \
           && cat <&3) || true
if [[ "$playlist" == *"#EXTM3U"* ]]; then
    echo "$me: http://$http/hls/demo.m3u8 is a playlist:" \
         "$(grep -c '\.ts' <<< "$playlist") segments"
else
    echo "$me: no playlist at http://$http/hls/demo.m3u8"
    ok=
fi

# Ctrl-C: make run stops nginx and PostgreSQL itself
kill -INT -- "-$run" 2>/dev/null || true
for _ in $(seq 1 30); do
    kill -0 "$run" 2>/dev/null || break
    sleep 1
done
if kill -0 "$run" 2>/dev/null; then
    echo "$me: make run did not stop on Ctrl-C in 30 s"
    ok=
elif [ -n "$(stray)" ]; then
    echo "$me: make run stopped but left processes:" \
         "$(stray | xargs -r ps -o comm= -p | xargs)"
    ok=
else
    echo "$me: make run stopped on Ctrl-C, nothing left running"
fi

versions
secs=$((SECONDS - start))
if [ -n "$ok" ]; then
    echo "$me: make run passed in $((secs / 60)) min $((secs % 60)) s"
else
    echo "$me: make run FAILED after $((secs / 60)) min $((secs % 60)) s"
    exit 1
fi
