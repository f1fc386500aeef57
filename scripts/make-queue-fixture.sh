#!/usr/bin/env bash
# Writes a RabbitMQ node's data as a given ctct-sync binary leaves it, for upgrade tests: the
# queues that release declares, on ONE node (as a broker running before it became a cluster),
# with commands of several kinds waiting in the commands queue, never consumed.
#
#   scripts/make-queue-fixture.sh BINARY OUT_DIR NAME
#
# BINARY is a ctct-sync built from the release to capture (e.g. `git worktree add /tmp/old
# 9147d43 && cargo build --locked --bin ctct-sync` there). Needs the installed rabbitmq-server
# (scripts/cluster.sh runs the node, on ports and in a directory of its own; the broker on
# 5672 is not used). Writes OUT_DIR/NAME.tar.gz (the node's data directory and feature-flag
# file, as `scripts/cluster.sh pack` writes them) and OUT_DIR/commands.tsv (id, type and
# expected outcome of each waiting command, tab-separated).
#
# The node is named ctctupgrade1@localhost (CTCT_CLUSTER_NAME=ctctupgrade, node 1): a
# RabbitMQ node's name is part of its data, so whoever starts a node from the archive must
# give it this name (`CTCT_CLUSTER_NAME=ctctupgrade scripts/cluster.sh restore 1 ARCHIVE`).
# The release runs with its default names: ctct.commands, ctct.results, ctct.commands.dead …
#
# Environment: CTCT_CLUSTER_BASE_PORT (default 5801), the first of the 16 ports the node
# may take (scripts/cluster.sh).
set -euo pipefail

bin=$(realpath "$1")
out=$2
name=$3
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(realpath "$out")
work=$(mktemp -d)

export CTCT_CLUSTER_DIR="$work/cluster"
export CTCT_CLUSTER_NAME=ctctupgrade
export CTCT_CLUSTER_BASE_PORT=${CTCT_CLUSTER_BASE_PORT:-5801}
cluster() { bash "$root/scripts/cluster.sh" "$@"; }

daemon_pid=
cleanup() {
  if [[ -n $daemon_pid ]]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  cluster down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cluster up-one
export CTCT_SYNC__AMQP__URL="amqp://guest:guest@127.0.0.1:$CTCT_CLUSTER_BASE_PORT/%2f"
export CTCT_SYNC__STORE__PATH="$work/ctct-sync.db"
export CTCT_SYNC__OPS__ENABLED=false
export RUST_LOG=warn

# The queues the release declares with its defaults (git show 9147d43:src/amqp/topology.rs).
queues=(
  ctct.commands
  ctct.commands.dead
  ctct.commands.retry.5000ms
  ctct.commands.retry.30000ms
  ctct.commands.retry.300000ms
  ctct.commands.retry.1800000ms
  ctct.commands.parked.quota
  ctct.commands.parked.auth.60000ms
)

# The release declares its topology when it starts consuming; then it stops, so nothing
# consumes what follows.
"$bin" run --sandbox 2>"$work/daemon.log" &
daemon_pid=$!
declared=
for _ in $(seq 1 240); do
  listed=$(cluster ctl 1 -q list_queues name 2>/dev/null || true)
  declared=yes
  for queue in "${queues[@]}"; do
    grep -qx "$queue" <<<"$listed" || declared=
  done
  [[ -n $declared ]] && break
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.5
done
[[ -n $declared ]] || {
  cat "$work/daemon.log" >&2
  echo "make-queue-fixture: the release did not declare its queues" >&2
  exit 1
}
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=

# id, type, data, the outcome the current release gives it against a fresh sandbox.
commands=()
for i in $(seq -w 1 20); do
  commands+=("q-upsert-$i|contact.upsert|{\"email\": \"queued$i@example.com\", \"first_name\": \"Queued $i\"}|succeeded")
done
for i in 1 2 3; do
  commands+=("q-create-$i|contact.create|{\"email\": \"queued-new$i@example.com\", \"last_name\": \"New $i\"}|succeeded")
done
for i in 1 2; do
  commands+=("q-field-$i|custom_field.create|{\"label\": \"Queued field $i\", \"type\": \"string\"}|succeeded")
  commands+=("q-list-$i|list.create|{\"name\": \"Queued list $i\"}|succeeded")
  commands+=("q-campaigns-$i|campaign.list|{\"limit\": 10}|succeeded")
done
commands+=("q-lists|list.list|{}|succeeded")
commands+=("q-fields|custom_field.list|{}|succeeded")
commands+=("q-emails|account.emails.list|{}|succeeded")
commands+=("q-privileges|account.privileges.get|{}|succeeded")
commands+=("q-rejected|contact.upsert|{\"email\": \"not an address\"}|rejected")

: >"$work/commands.tsv"
for command in "${commands[@]}"; do
  IFS='|' read -r id type data outcome <<<"$command"
  # --wait 0: published (confirmed by the broker) and not waited for.
  "$bin" send "$type" --id "$id" --data "$data" --wait 0 2>>"$work/send.log" ||
    {
      cat "$work/send.log" >&2
      exit 1
    }
  printf '%s\t%s\t%s\n' "$id" "$type" "$outcome" >>"$work/commands.tsv"
done

# The broker's counts lag a few seconds behind (quorum queues report them periodically).
for _ in $(seq 1 60); do
  waiting=$(cluster ctl 1 -q list_queues name messages | awk '$1 == "ctct.commands" {print $2}')
  [[ $waiting == "${#commands[@]}" ]] && break
  sleep 0.5
done
[[ $waiting == "${#commands[@]}" ]] || {
  echo "make-queue-fixture: ctct.commands holds ${waiting:-nothing}, not ${#commands[@]} commands" >&2
  exit 1
}

cluster stop-node 1
cluster pack 1 "$out/$name.tar.gz"
cp "$work/commands.tsv" "$out/commands.tsv"
chmod 0644 "$out/$name.tar.gz" "$out/commands.tsv"
echo "wrote $out/$name.tar.gz ($(stat -c %s "$out/$name.tar.gz") bytes, ${#commands[@]} commands waiting) and $out/commands.tsv"
