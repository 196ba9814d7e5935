#!/bin/bash
# make run: a private PostgreSQL and nginx with the module, in the
# foreground.  Data lives under run/ and is reused on the next run; Ctrl-C
# stops both.
#
# Environment: RTMP_PORT (1935), HTTP_PORT (8080), BIND (127.0.0.1; set
# 0.0.0.0 to publish from another machine), RTMPS_PORT (none: no RTMPS;
# nginx's stream module in front, with a self-signed certificate).

set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run=$top/run
bind=${BIND:-127.0.0.1}
rtmp_port=${RTMP_PORT:-1935}
http_port=${HTTP_PORT:-8080}
rtmps_port=${RTMPS_PORT:-}
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
stream=demo

die() { echo "make run: error: $*" >&2; exit 1; }

pgbin=
for v in 15 16 17 14 13; do
    if [ -x "/usr/lib/postgresql/$v/bin/postgres" ]; then
        pgbin=/usr/lib/postgresql/$v/bin
        break
    fi
done
[ -n "$pgbin" ] || die "no PostgreSQL server (make deps)"

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    perl -MIO::Socket::INET -e \
        'print IO::Socket::INET->new(LocalAddr => "127.0.0.1",
                                      Listen => 1)->sockport'
}

if busy "$rtmp_port"; then
    p=$(free_port)
    echo "make run: port $rtmp_port is taken, RTMP uses $p" >&2
    rtmp_port=$p
fi

if busy "$http_port"; then
    p=$(free_port)
    echo "make run: port $http_port is taken, HTTP uses $p" >&2
    http_port=$p
fi

if [ -n "$rtmps_port" ]; then
    [ -f "$stream_module" ] \
        || die "RTMPS needs nginx's stream module (libnginx-mod-stream)"
    if busy "$rtmps_port"; then
        p=$(free_port)
        echo "make run: port $rtmps_port is taken, RTMPS uses $p" >&2
        rtmps_port=$p
    fi
    # where the stream module hands connections to rtmp: loopback only
    proxied_port=$(free_port)
fi

mkdir -p "$run"/{hls,www,logs,tmp}
chmod 700 "$run"

# PostgreSQL refuses to run as root: as root it runs as "postgres", with
# its folder where that user can reach it

if [ "$(id -u)" -eq 0 ]; then
    pguser=postgres
    id "$pguser" >/dev/null 2>&1 || die "no \"postgres\" user (make deps)"
    as_pg() { runuser -u "$pguser" -- "$@"; }
    chmod 711 "$run"
    if as_pg test -x "$run" 2>/dev/null; then
        pgdir=$run/pg
    else
        pgdir=/var/lib/ngx-rtmp-pgauth/$(echo "$top" | md5sum | cut -c1-12)
        echo "make run: $run is out of reach of user $pguser," \
             "PostgreSQL data goes to $pgdir"
    fi
else
    as_pg() { "$@"; }
    pgdir=$run/pg
fi

# a short socket path: Unix socket paths are limited to 107 bytes
sockdir=$pgdir
if [ ${#sockdir} -gt 80 ]; then
    sockdir=/tmp/ngx-rtmp-pgauth-$(id -u)-$(echo "$top" | md5sum | cut -c1-8)
fi

mkdir -p "$pgdir" "$sockdir"
if [ "$(id -u)" -eq 0 ]; then
    chown "$pguser" "$pgdir" "$sockdir"
fi
chmod 700 "$pgdir" "$sockdir"

pgport=5432
psql_() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$sockdir" -p "$pgport" \
        -U postgres "$@"
}

if [ ! -f "$pgdir/data/PG_VERSION" ]; then
    echo "make run: creating a PostgreSQL cluster in $pgdir/data"
    as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 > "$pgdir/initdb.log" 2>&1 \
        || { cat "$pgdir/initdb.log" >&2; die "initdb failed"; }
fi

stop_pg() {
    as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 \
        || true
}

# a server left running by an earlier run that was killed
stop_pg

as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 60 \
    -o "-k $sockdir -p $pgport -c listen_addresses=''" start > /dev/null \
    || { tail -n 20 "$pgdir/postgres.log" >&2; die "PostgreSQL did not start"; }

nginx_pid=
cleanup() {
    trap - INT TERM EXIT
    # Ctrl-C of "make run | tee log" kills tee too: a message must not
    # stop the cleanup with SIGPIPE
    trap '' PIPE
    { echo; echo "make run: stopping"; } 2>/dev/null || true
    if [ -n "$nginx_pid" ]; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    stop_pg
}
trap cleanup INT TERM EXIT

if [ -z "$(psql_ -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'pgauth'")" ]; then
    psql_ -d postgres -c "CREATE DATABASE pgauth"
fi

# applying the schema again is safe: it upgrades an older one
psql_ -d pgauth < "$top/src/pgauth.sql" 2>&1 | grep -v NOTICE || true
psql_ -d pgauth -c "ALTER ROLE pgauth_nginx LOGIN"

# the demo key: kept in run/ (readable by you only) while it is valid
keyfile=$run/demo-key
key=$(cat "$keyfile" 2>/dev/null || true)
valid=
if [ -n "$key" ]; then
    valid=$(psql_ -d pgauth -c "SELECT 1 FROM pgauth.stream_keys
             WHERE key_digest = sha256(convert_to('$key', 'UTF8'))
               AND enabled AND (expires_at IS NULL OR expires_at > now())")
fi
if [ -z "$valid" ]; then
    key=$(psql_ -d pgauth -c "SELECT pgauth.create_key('$stream', 'live',
            NULL, 'make run demo key')")
    (umask 077 && echo "$key" > "$keyfile")
fi

# the player page
if [ ! -f "$top/node_modules/hls.js/dist/hls.min.js" ]; then
    (cd "$top" && npm ci --omit=dev --no-audit --no-fund \
                         --no-update-notifier --loglevel=error) \
        || die "npm install of hls.js failed"
fi
cp "$top/util/www/index.html" "$top/node_modules/hls.js/dist/hls.min.js" \
   "$run/www/"

user=
if [ "$(id -u)" -eq 0 ]; then
    user="user root root;"
fi

host=$bind
[ "$host" = 0.0.0.0 ] && host=$(hostname -I 2>/dev/null | awk '{print $1}')
host=${host:-127.0.0.1}

# RTMPS: TLS ends in the stream module, which tells rtmp the client's
# address in a PROXY protocol header
stream_load=
stream_block=
rtmp_proxied=
rtmps_msg=
if [ -n "$rtmps_port" ]; then
    if [ ! -f "$run/rtmps.key" ] \
       || ! openssl x509 -in "$run/rtmps.crt" -noout -checkend 86400 \
                -checkip "$host" >/dev/null 2>&1; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -nodes -keyout "$run/rtmps.key" -out "$run/rtmps.crt" \
            -days 365 -subj "/CN=$host" -addext "subjectAltName=IP:$host" \
            > "$run/logs/openssl.log" 2>&1 \
            || { cat "$run/logs/openssl.log" >&2; die "openssl failed"; }
    fi
    stream_load="load_module $stream_module;"
    stream_block="stream {
    server {
        listen $bind:$rtmps_port ssl;
        ssl_certificate $run/rtmps.crt;
        ssl_certificate_key $run/rtmps.key;
        proxy_pass 127.0.0.1:$proxied_port;
        proxy_protocol on;
    }
}"
    rtmp_proxied="listen 127.0.0.1:$proxied_port proxy_protocol;"
    rtmps_msg="
  RTMPS (TLS, a self-signed certificate: run/rtmps.crt):
      Server:      rtmps://$host:$rtmps_port/live
"
fi

cat > "$run/nginx.conf" <<CONF
# written by make run; edits are lost on the next run
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
load_module $top/objs/ngx_rtmp_pgauth_module.so;
$stream_load

$user
daemon off;
worker_processes 1;
pid $run/logs/nginx.pid;
error_log stderr notice;

events {
    worker_connections 1024;
}

rtmp {
    pgauth_dsn "host=$sockdir port=$pgport dbname=pgauth user=pgauth_nginx";
    access_log $run/logs/rtmp-access.log;

    server {
        listen $bind:$rtmp_port;
        $rtmp_proxied

        application live {
            live on;
            pgauth on;

            hls on;
            hls_path $run/hls;
            hls_fragment 2s;
            hls_playlist_length 10s;
        }
    }
}

$stream_block

http {
    access_log off;
    client_body_temp_path $run/tmp/body;
    proxy_temp_path $run/tmp/proxy;
    fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi;
    scgi_temp_path $run/tmp/scgi;

    types {
        text/html html;
        application/javascript js;
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }

    server {
        listen $bind:$http_port;
        root $run/www;

        location /hls/ {
            alias $run/hls/;
            add_header Cache-Control no-cache;
            add_header Access-Control-Allow-Origin *;
        }

        # the live streams and figures the player page lists
        location = /pgauth_status {
            pgauth_status;
        }
    }
}
CONF

nginx -t -q -p "$run" -c "$run/nginx.conf" || die "nginx -t failed"

cat <<MSG

  ngx_rtmp_pgauth is running.  In OBS: Settings > Stream

      Service:     Custom...
      Server:      rtmp://$host:$rtmp_port/live
      Stream Key:  $key
$rtmps_msg
  then Start Streaming, and watch in a browser:

      http://$host:$http_port/#$stream
      (the playlist: http://$host:$http_port/hls/$stream.m3u8;
       live streams and figures: http://$host:$http_port/pgauth_status)

  Or without OBS:
      ffmpeg -re -f lavfi -i testsrc=size=1280x720:rate=30 -f lavfi -i sine \\
          -c:v libx264 -preset veryfast -g 60 -c:a aac \\
          -f flv rtmp://$host:$rtmp_port/live/$key

  More keys:  psql -h $sockdir -p $pgport -U postgres -d pgauth \\
                  -c "SELECT pgauth.create_key('alice')"
  Ctrl-C stops nginx and PostgreSQL; the next make run reuses the data.

MSG

nginx -p "$run" -c "$run/nginx.conf" &
nginx_pid=$!
wait "$nginx_pid" || true
