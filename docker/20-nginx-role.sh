#!/bin/sh
# Lets nginx's role log in, and makes a demo key (printed once, in the
# container's log).  Runs once, when the database is first created.
set -eu

# the password goes in as a psql variable, quoted by psql
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d pgauth -q \
     -v pw="$PGAUTH_NGINX_PASSWORD" <<'SQL'
ALTER ROLE pgauth_nginx WITH LOGIN PASSWORD :'pw';
SQL

key=$(psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d pgauth -At \
      -c "SELECT pgauth.create_key('demo', 'live', NULL, 'docker demo key')")
echo "pgauth: demo key for stream 'demo': $key"
