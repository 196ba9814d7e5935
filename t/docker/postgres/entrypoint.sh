#!/bin/bash
# What the official postgres image's entrypoint does, in short: on an
# empty data folder, initdb with POSTGRES_USER (postgres) and
# POSTGRES_PASSWORD, create POSTGRES_DB, run /docker-entrypoint-initdb.d in
# name order (*.sql with psql, *.sh run when executable, else sourced) on a
# server reachable by its socket only; then the server itself, listening
# on every address with password authentication.

set -euo pipefail

export POSTGRES_USER=${POSTGRES_USER:-postgres}
export POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec runuser -u postgres -- "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the official image needs POSTGRES_PASSWORD}"

    initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C.UTF-8 \
        --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 > /dev/null
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"

    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" \
        start > /dev/null

    psql_() {
        psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" --no-password \
            --no-psqlrc "$@"
    }

    if [ "$POSTGRES_DB" != postgres ]; then
        psql_ -d postgres -q -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi

    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh)
                echo "entrypoint: running $f"
                if [ -x "$f" ]; then
                    "$f"
                else
                    # shellcheck disable=SC1090
                    . "$f"
                fi ;;
            *.sql)
                echo "entrypoint: running $f"
                psql_ -d "$POSTGRES_DB" -q -f "$f" ;;
        esac
    done

    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    echo "entrypoint: PostgreSQL init process complete; ready for start up."
fi

if [ "$1" = postgres ]; then
    shift
    exec postgres -c listen_addresses='*' "$@"
fi

exec "$@"
