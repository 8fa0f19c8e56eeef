#!/usr/bin/env bash
# Start the production shape on this machine against the local PostgreSQL and Redis.
# Usage: deploy/run-scaled.sh   (or `make run-scaled`; `JANUS=1 make run-scaled` adds Janus and two relays). Serves http://127.0.0.1:${NGINX_PORT:-8080}/
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/spaces}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export DEBUG="${DEBUG:-0}"
export SECRET_KEY="${SECRET_KEY:-$(head -c 48 /dev/urandom | base64 | tr -d '\n')}"
export NGINX_PORT="${NGINX_PORT:-8080}" GUNICORN_PORT="${GUNICORN_PORT:-8000}" DAPHNE_PORT_1="${DAPHNE_PORT_1:-8001}" DAPHNE_PORT_2="${DAPHNE_PORT_2:-8002}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"
# Plain HTTP on loopback: no TLS redirect or secure-only cookies here. Turn them back on behind TLS.
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-0}" SECURE_COOKIES="${SECURE_COOKIES:-0}" SECURE_HSTS_SECONDS="${SECURE_HSTS_SECONDS:-0}"
export STATIC_ROOT="${STATIC_ROOT:-$PWD/staticfiles}" MEDIA_ROOT="${MEDIA_ROOT:-$PWD/var/media}"
export NGINX_PREFIX="$PWD/var/nginx"
mkdir -p "$NGINX_PREFIX" "$MEDIA_ROOT"

dbname="${DATABASE_URL##*/}"
psql "${DATABASE_URL%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$dbname'" | grep -q 1 \
  || psql "${DATABASE_URL%/*}/postgres" -c "CREATE DATABASE \"$dbname\""
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py seed_demo
envsubst '${NGINX_PREFIX} ${NGINX_PORT} ${GUNICORN_PORT} ${DAPHNE_PORT_1} ${DAPHNE_PORT_2} ${STATIC_ROOT} ${MEDIA_ROOT}' \
  < deploy/nginx.conf.template > "$NGINX_PREFIX/nginx.conf"
procfile=deploy/Procfile.scaled
if [ "${JANUS:-0}" = "1" ]; then
  # Scale-mode audio: one AudioBridge Janus and two Streaming relays on this machine (docs/janus.md).
  eval "$(.venv/bin/python deploy/janus_scaled.py var/janus)"
  procfile="$NGINX_PREFIX/Procfile"
  cat deploy/Procfile.scaled deploy/Procfile.janus > "$procfile"
fi
exec .venv/bin/honcho start -f "$procfile"
