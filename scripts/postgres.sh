#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests, installing Debian's
# package first if it is missing, and prints its URL.
#
#   eval "$(scripts/postgres.sh start)"   exports PROVA_TEST_POSTGRES_URL
#   scripts/postgres.sh stop
set -euo pipefail

PGPORT="${PROVA_PG_PORT:-55439}"
PGDIR="${PROVA_PG_DIR:-/tmp/prova-test-postgres}"

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$d" ]; then
    echo "installing PostgreSQL from Debian's packages" >&2
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    else
      sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$d"
}

# initdb refuses to run as root: run the server as the `postgres` user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$PGDIR" postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-start}" in
  start)
    BIN=$(bindir)
    if as_pg "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
      echo "export PROVA_TEST_POSTGRES_URL=postgres://prova@127.0.0.1:$PGPORT/prova"
      exit 0
    fi
    rm -rf "$PGDIR"
    mkdir -p "$PGDIR"
    [ "$(id -u)" = 0 ] && { id postgres >/dev/null 2>&1 || useradd --system --home "$PGDIR" postgres; chown postgres "$PGDIR"; }
    as_pg "$BIN/initdb" -D "$PGDIR/data" -U prova --auth=trust -E UTF8 >/dev/null
    as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
      -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U prova prova
    echo "export PROVA_TEST_POSTGRES_URL=postgres://prova@127.0.0.1:$PGPORT/prova"
    ;;
  stop)
    BIN=$(bindir)
    as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
