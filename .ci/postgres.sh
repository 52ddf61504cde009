#!/usr/bin/env bash
# Start a real PostgreSQL server for the run-store tests (Debian's package), and
# print the admin URL the tests use (RLMREC_TEST_PG). Idempotent.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    as_root pg_createcluster "$version" main >&2
fi
pg_lsclusters -h | grep -q "^$version main .* online" || as_root pg_ctlcluster "$version" main start >&2
for _ in $(seq 30); do pg_isready -q -h localhost && break; sleep 1; done
pg_isready -h localhost >&2
psql_admin() { as_root su postgres -c "psql -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = 'rlmrec'")" != 1 ]; then
    psql_admin "CREATE ROLE rlmrec LOGIN SUPERUSER PASSWORD 'rlmrec'"
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = 'rlmrec'")" != 1 ]; then
    psql_admin "CREATE DATABASE rlmrec OWNER rlmrec"
fi
echo "postgresql+psycopg://rlmrec:rlmrec@localhost:5432/rlmrec"
