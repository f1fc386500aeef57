#!/usr/bin/env bash
# Writes the secrets deploy/compose.yaml mounts, with new random passwords:
#
#   secrets/postgres_password   PostgreSQL's password for the user ctct
#   secrets/postgres_url        postgres://ctct:<password>@postgres:5432/ctct (store.url_file, mirror.url_file)
#   secrets/amqp_urls           the three RabbitMQ nodes, one URI per line (amqp.urls_file)
#   .env                        RABBITMQ_PASSWORD and RABBITMQ_ERLANG_COOKIE for the nodes
#
# and, with --sandbox, appends sandbox.env to .env (the demo against the sandbox). Without
# it, put your application's client secret in secrets/client_secret and CTCT_CLIENT_ID=<API
# key> in .env. Refuses to overwrite: the volumes keep the passwords they were first made
# with (`docker compose down -v` forgets them; then remove secrets/ and .env and run again).
#
#   ./make-secrets.sh [--sandbox]
set -euo pipefail
cd "$(dirname "$0")"

sandbox=false
case "${1:-}" in
  --sandbox) sandbox=true ;;
  "") ;;
  *) echo "usage: $0 [--sandbox]" >&2; exit 2 ;;
esac

if [[ -e secrets/postgres_password || -e .env ]]; then
  echo "deploy/secrets/ or deploy/.env already exists; remove them to make new ones" >&2
  exit 1
fi

# Letters and digits only: the passwords go into URLs unescaped.
random() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1" || true; }

umask 077
mkdir -p secrets
pg_password=$(random 32)
mq_password=$(random 32)
printf '%s\n' "$pg_password" >secrets/postgres_password
# The database is reached over the compose network only, without TLS.
printf 'postgres://ctct:%s@postgres:5432/ctct?sslmode=disable\n' "$pg_password" >secrets/postgres_url
for node in 1 2 3; do
  printf 'amqp://ctct:%s@rabbitmq-%s:5672/%%2f\n' "$mq_password" "$node"
done >secrets/amqp_urls
# Compose mounts secret files as they are: the containers' users (ctct, postgres) must read
# them. The directory stays private to you.
chmod 0644 secrets/postgres_password secrets/postgres_url secrets/amqp_urls
{
  echo "# Written by make-secrets.sh: read by docker compose in this directory."
  echo "RABBITMQ_PASSWORD=$mq_password"
  echo "RABBITMQ_ERLANG_COOKIE=$(random 48 | tr 'a-z' 'A-Z')"
} >.env
if $sandbox; then
  cat sandbox.env >>.env
  echo "secrets/ and .env written, with the sandbox demo: docker compose up -d --build"
else
  echo "secrets/ and .env written: now put the client secret in secrets/client_secret (chmod 0644)"
  echo "and CTCT_CLIENT_ID=<API key> in .env, then: docker compose run --rm ctct-sync-1 auth device"
fi
