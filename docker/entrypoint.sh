#!/bin/sh
# Writes the PostgreSQL connection string into nginx.conf, then runs nginx.
#
#   PGAUTH_DSN   libpq conninfo, e.g.
#                host=db dbname=pgauth user=pgauth_nginx password=...
set -eu

: "${PGAUTH_DSN:?set PGAUTH_DSN to a libpq connection string}"

case "$PGAUTH_DSN" in
    *'"'*|*'|'*) echo "entrypoint: PGAUTH_DSN must not contain \" or |" >&2
                 exit 1 ;;
esac

sed "s|@PGAUTH_DSN@|$PGAUTH_DSN|" /etc/nginx/nginx.conf.in > /etc/nginx/nginx.conf
nginx -t -q

exec "$@"
