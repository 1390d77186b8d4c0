#!/bin/sh
# What compose.yaml relies on from Docker Hub's postgres image: on an empty PGDATA, a cluster whose
# superuser is POSTGRES_USER (password POSTGRES_PASSWORD) with a database POSTGRES_DB, password logins
# from any address; then the server, listening on every address.
set -eu
user="${POSTGRES_USER:-postgres}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
    initdb --username="$user" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null  # as the official image (a SQL_ASCII database returns bytes)
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -o "-c listen_addresses=''" -w start >/dev/null
    if [ "${POSTGRES_DB:-$user}" != postgres ]; then createdb --username="$user" "${POSTGRES_DB:-$user}"; fi
    pg_ctl -m fast -w stop >/dev/null
fi
exec "$@" -c listen_addresses='*'
