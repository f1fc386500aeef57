#!/usr/bin/env bash
# Writes a store the way a given ctct-sync binary writes it, for upgrade tests: tokens of a
# connected account, ledger rows (succeeded, rejected), and a full mirror — with the sandbox's
# state beside it, so the stored refresh token still works when the sandbox is started from
# that state.
#
#   scripts/make-store-fixture.sh BINARY OUT_DIR NAME
#
# BINARY is a ctct-sync built from the release to capture (e.g. `git worktree add /tmp/old
# 9147d43 && cargo build --locked --bin ctct-sync` there). Needs RabbitMQ on 127.0.0.1:5672 and
# python3. Writes OUT_DIR/NAME.sqlite3 (checkpointed: the one file is complete) and
# OUT_DIR/NAME-sandbox-state.json.
set -euo pipefail

bin=$(realpath "$1")
out=$2
name=$3
mkdir -p "$out"
work=$(mktemp -d)
tag="fixture-$(date +%s)-$$"

export CTCT_SYNC__STORE__PATH="$work/ctct-sync.db"
export CTCT_SYNC__OPS__ENABLED=false
export CTCT_SYNC__AMQP__COMMANDS_QUEUE="$tag.commands"
export CTCT_SYNC__AMQP__RESULTS_EXCHANGE="$tag.results"
export CTCT_SYNC__AMQP__DEAD_LETTER_QUEUE="$tag.dead"
export RUST_LOG=warn

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$bin" sandbox --listen 127.0.0.1:0 --seed-contacts 200 --limits off \
  --state "$work/sandbox-state.json" >"$work/credentials.json" 2>"$work/sandbox.log" &
sandbox_pid=$!
pids+=("$sandbox_pid")
for _ in $(seq 1 100); do [ -s "$work/credentials.json" ] && break; sleep 0.1; done

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/credentials.json" "$1"; }
export CTCT_SYNC__API__BASE_URL=$(field base_url)
export CTCT_SYNC__OAUTH__CLIENT_ID=$(field client_id)
export CTCT_SYNC__OAUTH__CLIENT_SECRET=$(field client_secret)
export CTCT_SYNC__OAUTH__TOKEN_URL=$(field token_url)
export CTCT_SYNC__OAUTH__AUTHORIZE_URL=$(field authorize_url)
export CTCT_SYNC__OAUTH__DEVICE_AUTHORIZE_URL=$(field device_authorize_url)

field refresh_token | "$bin" auth import
"$bin" run 2>"$work/daemon.log" &
daemon_pid=$!
pids+=("$daemon_pid")

# The daemon declares its queues when it starts consuming.
for _ in $(seq 1 120); do
  rabbitmqctl -q list_queues name 2>/dev/null | grep -qx "$tag.commands" && break
  sleep 0.5
done
send() { "$bin" send "$@" --wait 60 || true; }
list=$(send list.create --data '{"name": "Fixture list"}' | python3 -c "
import json, sys
text = sys.stdin.read()
print(json.loads(text[text.index('{'):])['data']['list_id'])")
send custom_field.create --data '{"label": "Fixture field", "type": "string"}' >/dev/null
for i in 1 2 3; do
  send contact.upsert --id "fixture-upsert-$i" --data "{\"email\": \"fixture$i@example.com\", \"first_name\": \"Fixture $i\", \"list_ids\": [\"$list\"]}" >/dev/null
done
send contact.upsert --id fixture-rejected --data '{"email": "not an address"}' >/dev/null
"$bin" mirror --full >/dev/null

kill -TERM "$daemon_pid"; wait "$daemon_pid" || true
kill -TERM "$sandbox_pid"; wait "$sandbox_pid" || true
pids=()

python3 - "$work/ctct-sync.db" <<'EOF'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
conn.close()
EOF
cp "$work/ctct-sync.db" "$out/$name.sqlite3"
cp "$work/sandbox-state.json" "$out/$name-sandbox-state.json"
chmod 0644 "$out/$name.sqlite3" "$out/$name-sandbox-state.json"
rm -rf "$work"
echo "wrote $out/$name.sqlite3 and $out/$name-sandbox-state.json"
