#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, for trying and testing failover
# (docs/operations.md, "A three-node test bed").
#
#   scripts/cluster.sh up                start the three nodes, cluster them, print their URLs
#   scripts/cluster.sh up-one            start node 1 alone: a single-node broker (the others
#                                        join it at the next `up`)
#   scripts/cluster.sh restore N ARCHIVE before `up`: node N's data from ARCHIVE, a node's
#                                        data packed by scripts/make-queue-fixture.sh
#   scripts/cluster.sh pack N ARCHIVE    stopped node N's data into ARCHIVE (.tar.gz)
#   scripts/cluster.sh grow              give every quorum queue a member on every running
#                                        node (rabbitmq-queues grow NODE all, node by node)
#   scripts/cluster.sh down              stop the three nodes and remove the cluster's directory
#   scripts/cluster.sh status            which nodes run
#   scripts/cluster.sh urls              the AMQP URLs, comma-separated (for amqp.urls)
#   scripts/cluster.sh stop-node N       stop node N gracefully (rabbitmqctl stop)
#   scripts/cluster.sh kill-node N       kill node N's Erlang VM (SIGKILL)
#   scripts/cluster.sh start-node N      start node N again; it rejoins the cluster
#   scripts/cluster.sh ctl N ARGS…       rabbitmqctl ARGS… against node N
#   scripts/cluster.sh queues N ARGS…    rabbitmq-queues ARGS… against node N
#
# It uses the installed rabbitmq-server (its scripts in /usr/lib/rabbitmq/bin, not the
# Debian wrappers in /usr/sbin, which switch to the rabbitmq user), never the broker already
# running on 5672: its own node names, ports, data, logs, configuration, plugin list and
# Erlang cookie, all under one directory.
#
# Environment:
#   CTCT_CLUSTER_DIR        where everything lives (default /tmp/ctct-cluster)
#   CTCT_CLUSTER_BASE_PORT  first of the 16 ports the cluster takes (default 5701): node N
#                           takes AMQP port BASE+N-1 and distribution port BASE+N+2; the
#                           command-line tools use BASE+6 to BASE+15
#   CTCT_CLUSTER_NAME       node names are NAME1@localhost … NAME3@localhost (default ctct)
#   CTCT_CLUSTER_TIMEOUT    seconds a node may take to boot, stop or join (default 90)
#   CTCT_RABBITMQ_SBIN      the directory of rabbitmq-server and rabbitmqctl (found by default)
#   CTCT_CLUSTER_TAKES_5672 1: the cluster's ports may include 5672 (scripts/dev sets it when
#                           nothing answers there, to run node 1 alone in the system broker's
#                           place)
#
# The nodes run as the calling user with HOME set to the cluster's directory, so their
# Erlang cookie is $CTCT_CLUSTER_DIR/.erlang.cookie: neither ~/.erlang.cookie nor the
# system broker's cookie (/var/lib/rabbitmq/.erlang.cookie) is read or written.
set -euo pipefail

NODES=(1 2 3)
DIR=${CTCT_CLUSTER_DIR:-/tmp/ctct-cluster}
BASE=${CTCT_CLUSTER_BASE_PORT:-5701}
NAME=${CTCT_CLUSTER_NAME:-ctct}
TIMEOUT=${CTCT_CLUSTER_TIMEOUT:-90}
MARKER=.ctct-cluster

die() {
  echo "cluster: $*" >&2
  exit 1
}

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

check_settings() {
  [[ $BASE =~ ^[0-9]+$ ]] && ((BASE >= 1024 && BASE + 15 <= 65535)) ||
    die "CTCT_CLUSTER_BASE_PORT=$BASE: expected a port from 1024 to 65520 (the cluster takes 16 ports from it)"
  # scripts/dev runs node 1 alone on 5672 when no broker answers there (the system broker's
  # port is free then) and says so with CTCT_CLUSTER_TAKES_5672=1.
  if [[ ${CTCT_CLUSTER_TAKES_5672:-} != 1 ]]; then
    ((BASE + 15 < 5672 || BASE > 5672)) ||
      die "CTCT_CLUSTER_BASE_PORT=$BASE: the cluster's ports $BASE-$((BASE + 15)) would take 5672 (the system broker's)"
  fi
  ((BASE + 15 < 25672 || BASE > 25672)) ||
    die "CTCT_CLUSTER_BASE_PORT=$BASE: the cluster's ports $BASE-$((BASE + 15)) would take 25672 (the system broker's)"
  [[ $NAME =~ ^[A-Za-z][A-Za-z0-9_-]*$ ]] ||
    die "CTCT_CLUSTER_NAME=$NAME: expected letters, digits, _ and - (starting with a letter)"
  [[ $NAME != rabbit ]] || die "CTCT_CLUSTER_NAME=rabbit would clash with the system broker's node rabbit@localhost"
  [[ $TIMEOUT =~ ^[0-9]+$ ]] && ((TIMEOUT > 0)) || die "CTCT_CLUSTER_TIMEOUT=$TIMEOUT: expected whole seconds above 0"
  case $DIR in
    /* ) ;;
    * ) die "CTCT_CLUSTER_DIR=$DIR: expected an absolute path" ;;
  esac
  case $DIR in
    / | /tmp | /tmp/ | /var/lib/rabbitmq* | /etc/* | "$HOME" ) die "CTCT_CLUSTER_DIR=$DIR: choose a directory of the cluster's own" ;;
  esac
}

find_sbin() {
  if [[ -n ${CTCT_RABBITMQ_SBIN:-} ]]; then
    SBIN=$CTCT_RABBITMQ_SBIN
  elif [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
    SBIN=/usr/lib/rabbitmq/bin
  elif command -v rabbitmq-server >/dev/null 2>&1; then
    SBIN=$(dirname "$(command -v rabbitmq-server)")
  else
    die "rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)"
  fi
  for tool in rabbitmq-server rabbitmqctl rabbitmq-queues; do
    [[ -x $SBIN/$tool ]] || die "$SBIN/$tool not found (set CTCT_RABBITMQ_SBIN)"
  done
}

check_node_number() {
  [[ ${1:-} =~ ^[1-3]$ ]] || die "expected a node number 1, 2 or 3, got '${1:-}'"
}

node_name() { echo "${NAME}$1@localhost"; }
amqp_port() { echo $((BASE + $1 - 1)); }
dist_port() { echo $((BASE + $1 + 2)); }
pid_file() { echo "$DIR/node$1.pid"; }
node_url() { echo "amqp://guest:guest@127.0.0.1:$(amqp_port "$1")/%2f"; }
data_dir() { echo "$DIR/mnesia/$(node_name "$1")"; }
# What a node keeps beside its data directory: the feature flags it has enabled.
flags_file() { echo "$DIR/mnesia/$(node_name "$1")-feature_flags"; }

# The environment every RabbitMQ script of node N runs with (server and command-line tools).
node_env() {
  local n=$1
  export HOME=$DIR
  export RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME=$(node_name "$n")
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT
  RABBITMQ_NODE_PORT=$(amqp_port "$n")
  export RABBITMQ_DIST_PORT
  RABBITMQ_DIST_PORT=$(dist_port "$n")
  export RABBITMQ_CONFIG_FILE=$DIR/node$n.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$DIR/mnesia
  export RABBITMQ_LOG_BASE=$DIR/log
  export RABBITMQ_PID_FILE
  RABBITMQ_PID_FILE=$(pid_file "$n")
  export RABBITMQ_CTL_DIST_PORT_MIN=$((BASE + 6))
  export RABBITMQ_CTL_DIST_PORT_MAX=$((BASE + 15))
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export ERL_EPMD_ADDRESS=127.0.0.1
}

# rabbitmqctl against node N (in a subshell: the environment stays the node's).
ctl() {
  local n=$1
  shift
  (node_env "$n" && "$SBIN/rabbitmqctl" -n "$(node_name "$n")" "$@")
}

queues() {
  local n=$1
  shift
  (node_env "$n" && "$SBIN/rabbitmq-queues" -n "$(node_name "$n")" "$@")
}

# The OS pid of node N's Erlang VM, when it runs: from its pid file, else found by the node
# name in a beam process's environment (a node killed before writing its pid file).
node_pid() {
  local n=$1 pid
  pid=$(cat "$(pid_file "$n")" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && is_our_beam "$pid" "$n"; then
    echo "$pid"
    return 0
  fi
  local proc
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    if is_our_beam "$pid" "$n"; then
      echo "$pid"
      return 0
    fi
  done
  return 1
}

# True when process PID is a beam VM of node N of this cluster (its directory and name).
is_our_beam() {
  local pid=$1 n=$2 env
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == beam* ]] || return 1
  env=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ") || return 1
  grep -qx "RABBITMQ_NODENAME=$(node_name "$n")" <<<"$env" &&
    grep -qx "RABBITMQ_MNESIA_BASE=$DIR/mnesia" <<<"$env"
}

running() { node_pid "$1" >/dev/null; }

# True while process PID runs (a zombie waiting for its parent to reap it has exited).
alive() {
  local state
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The cluster's directory, cookie and files (kept as they are when already there).
prepare() {
  if [[ -e $DIR && ! -e $DIR/$MARKER ]]; then
    if [[ -n $(ls -A "$DIR" 2>/dev/null) ]]; then
      die "$DIR exists and is not a cluster of this script's; choose another CTCT_CLUSTER_DIR"
    fi
  fi
  mkdir -p "$DIR/mnesia" "$DIR/log"
  touch "$DIR/$MARKER"
  if [[ ! -s $DIR/.erlang.cookie ]]; then
    (umask 077 && head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F >"$DIR/.erlang.cookie")
    chmod 400 "$DIR/.erlang.cookie"
  fi
  # No NODENAME, ports or flags from /etc/rabbitmq/rabbitmq-env.conf: everything is in
  # the environment node_env sets.
  : >"$DIR/rabbitmq-env.conf"
  # No plugins: no management or Prometheus listener to clash with the system broker's.
  echo '[].' >"$DIR/enabled_plugins"
  echo '[].' >"$DIR/advanced.config"
  local n
  for n in "${NODES[@]}"; do
    cat >"$DIR/node$n.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
log.console = false
log.file.level = info
EOF
  done
}

# Starts node N's VM in the background (it boots on its own; see await_node).
launch() {
  local n=$1 port
  port=$(amqp_port "$n")
  for port in "$port" "$(dist_port "$n")"; do
    if port_taken "$port"; then
      die "node $n: port $port is taken by another program; set CTCT_CLUSTER_BASE_PORT"
    fi
  done
  rm -f "$(pid_file "$n")"
  (node_env "$n" && cd "$DIR" && "$SBIN/rabbitmq-server" -detached >>"$DIR/log/node$n.out" 2>&1) ||
    die "node $n: rabbitmq-server -detached failed (see $DIR/log/node$n.out)"
}

# Waits until node N's broker runs (at most CTCT_CLUSTER_TIMEOUT seconds).
await_node() {
  local n=$1 deadline=$((SECONDS + TIMEOUT))
  until ctl "$n" await_startup --timeout 5 >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "node $n ($(node_name "$n")) did not start within $TIMEOUT s; its log: $DIR/log/$(node_name "$n").log"
    fi
    if ! running "$n" && ((SECONDS > deadline - TIMEOUT + 5)); then
      die "node $n ($(node_name "$n")) exited while booting; its log: $DIR/log/$(node_name "$n").log and $DIR/log/node$n.out"
    fi
    sleep 0.5
  done
}

# Joins fresh node N to the cluster of node PEER.
join() {
  local n=$1 peer=$2 log=$DIR/log/node$1.join
  {
    ctl "$n" stop_app &&
      ctl "$n" reset &&
      ctl "$n" join_cluster "$(node_name "$peer")" &&
      ctl "$n" start_app
  } >>"$log" 2>&1 || die "node $n could not join $(node_name "$peer") (see $log)"
}

# The nodes running in the cluster as node N sees it.
running_members() {
  ctl "$1" cluster_status --formatter json 2>/dev/null |
    grep -o '"running_nodes":\[[^]]*\]' | grep -o '"[^"]*@[^"]*"' | tr -d '"' || true
}

await_members() {
  local want=$1 deadline=$((SECONDS + TIMEOUT)) n members
  while :; do
    for n in "${NODES[@]}"; do
      if running "$n"; then
        members=$(running_members "$n" | wc -l)
        if ((members >= want)); then
          return 0
        fi
        break
      fi
    done
    if ((SECONDS >= deadline)); then
      die "the cluster did not show $want running nodes within $TIMEOUT s"
    fi
    sleep 0.5
  done
}

urls() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$(node_url "$n")"); done
  (
    IFS=,
    echo "${out[*]}"
  )
}

cmd_up() {
  prepare
  local n fresh=() started=() peer=
  for n in "${NODES[@]}"; do
    if running "$n"; then
      continue
    fi
    if [[ ! -d $(data_dir "$n") ]]; then
      fresh+=("$n")
    fi
    launch "$n"
    started+=("$n")
  done
  for n in "${started[@]}"; do
    await_node "$n"
  done
  # The first node that is not fresh (or node 1) is the one the fresh ones join.
  for n in "${NODES[@]}"; do
    if [[ ! " ${fresh[*]} " =~ " $n " ]]; then
      peer=$n
      break
    fi
  done
  if [[ -z $peer ]]; then
    peer=1
  fi
  for n in "${fresh[@]}"; do
    if [[ $n != "$peer" ]]; then
      join "$n" "$peer"
    fi
  done
  await_members "${#NODES[@]}"
  echo "cluster: three nodes running in $DIR"
  for n in "${NODES[@]}"; do
    echo "node $n  $(node_name "$n")  $(node_url "$n")"
  done
  echo "amqp.urls: $(urls)"
}

# Node 1 alone, as a single-node broker: no other node is started or joined. A later `up`
# starts nodes 2 and 3 and joins them to it.
cmd_up_one() {
  prepare
  if ! running 1; then
    launch 1
    await_node 1
  fi
  echo "cluster: node 1 running alone in $DIR"
  echo "node 1  $(node_name 1)  $(node_url 1)"
}

# Packs stopped node N's data (its data directory and feature-flag file, under their own
# names, which carry the node's name) into a gzipped tar ARCHIVE.
cmd_pack() {
  local n=$1 archive name
  archive=$(realpath -m "$2")
  need_cluster
  ! running "$n" || die "node $n runs; stop it first ('$0 stop-node $n') so its data is complete"
  [[ -d $(data_dir "$n") ]] || die "node $n has no data in $(data_dir "$n")"
  name=$(node_name "$n")
  local files=("$name")
  [[ -e $(flags_file "$n") ]] && files+=("$name-feature_flags")
  # Without owner names and times of its own: the same data packs the same way.
  tar --create --gzip --file "$archive" --directory "$DIR/mnesia" \
    --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 "${files[@]}" ||
    die "could not write $archive"
  echo "cluster: node $n ($name) packed into $archive"
}

# Unpacks ARCHIVE (written by `pack`) as node N's data, before node N first starts. The
# node's name is part of its data (RabbitMQ refuses data of another node name, and a quorum
# queue's members are node names), so the archive must hold data of node N's name exactly:
# set CTCT_CLUSTER_NAME to the name it was packed with.
cmd_restore() {
  local n=$1 archive name unpack entry
  archive=$(realpath -m "$2")
  [[ -f $archive ]] || die "no archive $archive"
  prepare
  ! running "$n" || die "node $n runs; its data cannot be replaced"
  [[ ! -e $(data_dir "$n") ]] || die "node $n has data already in $(data_dir "$n"); use another CTCT_CLUSTER_DIR"
  name=$(node_name "$n")
  unpack=$(mktemp -d "$DIR/restore.XXXXXX")
  tar --extract --gzip --file "$archive" --directory "$unpack" --no-same-owner ||
    die "could not unpack $archive"
  if [[ ! -d $unpack/$name ]]; then
    entry=$(ls "$unpack" | grep -v -- '-feature_flags$' | head -n 1)
    rm -rf "$unpack"
    die "$archive holds the data of node '${entry:-nothing}', not of node $n ($name); node names are part of the data: set CTCT_CLUSTER_NAME so that node $n is named '${entry:-?}'"
  fi
  relocate "$unpack/$name" "$name" "$(data_dir "$n")"
  mv "$unpack/$name" "$(data_dir "$n")"
  if [[ -e $unpack/$name-feature_flags ]]; then
    mv "$unpack/$name-feature_flags" "$(flags_file "$n")"
  fi
  rm -rf "$unpack"
  echo "cluster: node $n ($name) has the data of $archive; start it with '$0 up' or '$0 up-one'"
}

# Points the Raft servers in node data DATA (quorum queues, coordination) at where it is
# restored. Each server keeps its system's data directory, as an absolute path, in its
# `config` file, and reads its log from there at start: data moved elsewhere and left as it
# is boots with its quorum queues down (`noproc`) and their servers recreating the old
# directories.
relocate() {
  local data=$1 name=$2 to=$3 pattern config
  # The node name as a regular expression, and the target as a sed replacement.
  pattern=${name//./\\.}
  to=${to//\\/\\\\}
  to=${to//&/\\&}
  to=${to//#/\\#}
  while IFS= read -r -d '' config; do
    sed -i -E "s#\"[^\"]*/$pattern/(quorum|coordination)/$pattern\"#\"$to/\\1/$name\"#g" "$config" ||
      die "could not rewrite $config"
  done < <(find "$data/quorum" "$data/coordination" -mindepth 3 -maxdepth 3 -name config -type f -print0 2>/dev/null)
}

# Adds a member on every running node to every quorum queue that has none there: what a
# queue declared before the nodes joined needs (its members are the nodes that ran when it
# was declared). Each `rabbitmq-queues grow NODE all` runs against that node.
cmd_grow() {
  need_cluster
  local n grown=0
  for n in "${NODES[@]}"; do
    if running "$n"; then
      queues "$n" grow "$(node_name "$n")" all --errors-only >>"$DIR/log/grow.log" 2>&1 ||
        die "rabbitmq-queues grow $(node_name "$n") all failed (see $DIR/log/grow.log)"
      grown=$((grown + 1))
    fi
  done
  echo "cluster: every quorum queue has a member on each of the $grown running node(s)"
}

cmd_down() {
  if [[ ! -e $DIR ]]; then
    echo "cluster: nothing in $DIR"
    return 0
  fi
  [[ -e $DIR/$MARKER ]] || die "$DIR is not a cluster of this script's; not removing it"
  local n pid pids=()
  for n in "${NODES[@]}"; do
    if pid=$(node_pid "$n"); then
      # The whole cluster goes: no need for a graceful stop, its data is removed next.
      kill -KILL "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 30))
  for pid in "${pids[@]}"; do
    while alive "$pid"; do
      ((SECONDS < deadline)) || die "process $pid did not exit after SIGKILL"
      sleep 0.1
    done
  done
  rm -rf "$DIR"
  echo "cluster: stopped ${#pids[@]} node(s) and removed $DIR"
}

cmd_status() {
  if [[ ! -e $DIR/$MARKER ]]; then
    echo "cluster: no cluster in $DIR"
    return 0
  fi
  local n pid
  for n in "${NODES[@]}"; do
    if pid=$(node_pid "$n"); then
      echo "node $n  $(node_name "$n")  $(node_url "$n")  running (pid $pid)"
    else
      echo "node $n  $(node_name "$n")  $(node_url "$n")  stopped"
    fi
  done
}

need_cluster() {
  [[ -e $DIR/$MARKER ]] || die "no cluster in $DIR; start one with '$0 up'"
}

cmd_stop_node() {
  local n=$1 pid
  need_cluster
  if ! pid=$(node_pid "$n"); then
    echo "cluster: node $n is not running"
    return 0
  fi
  ctl "$n" stop >/dev/null 2>&1 || true
  local deadline=$((SECONDS + TIMEOUT))
  while alive "$pid"; do
    ((SECONDS < deadline)) || die "node $n did not stop within $TIMEOUT s"
    sleep 0.1
  done
  echo "cluster: node $n stopped"
}

cmd_kill_node() {
  local n=$1 pid
  need_cluster
  if ! pid=$(node_pid "$n"); then
    echo "cluster: node $n is not running"
    return 0
  fi
  kill -KILL "$pid"
  local deadline=$((SECONDS + 30))
  while alive "$pid"; do
    ((SECONDS < deadline)) || die "node $n (pid $pid) did not exit after SIGKILL"
    sleep 0.1
  done
  echo "cluster: node $n killed"
}

cmd_start_node() {
  local n=$1 peer
  need_cluster
  if running "$n"; then
    echo "cluster: node $n is already running"
    return 0
  fi
  if [[ -d $(data_dir "$n") ]]; then
    # A member already: it rejoins the cluster as it boots.
    launch "$n"
    await_node "$n"
  else
    for peer in "${NODES[@]}"; do
      if [[ $peer != "$n" ]] && running "$peer"; then
        break
      fi
      peer=
    done
    [[ -n $peer ]] || die "node $n has no data and no other node runs; use '$0 up'"
    launch "$n"
    await_node "$n"
    join "$n" "$peer"
  fi
  echo "cluster: node $n running  $(node_url "$n")"
}

main() {
  [[ $# -ge 1 ]] || usage
  check_settings
  find_sbin
  local command=$1
  shift
  case $command in
    up) cmd_up ;;
    up-one) cmd_up_one ;;
    grow) cmd_grow ;;
    pack)
      check_node_number "${1:-}"
      [[ -n ${2:-} ]] || die "expected: pack N ARCHIVE"
      cmd_pack "$1" "$2"
      ;;
    restore)
      check_node_number "${1:-}"
      [[ -n ${2:-} ]] || die "expected: restore N ARCHIVE"
      cmd_restore "$1" "$2"
      ;;
    down) cmd_down ;;
    status) cmd_status ;;
    urls) urls ;;
    stop-node)
      check_node_number "${1:-}"
      cmd_stop_node "$1"
      ;;
    kill-node)
      check_node_number "${1:-}"
      cmd_kill_node "$1"
      ;;
    start-node)
      check_node_number "${1:-}"
      cmd_start_node "$1"
      ;;
    ctl)
      check_node_number "${1:-}"
      need_cluster
      ctl "$@"
      ;;
    queues)
      check_node_number "${1:-}"
      need_cluster
      queues "$@"
      ;;
    -h | --help | help) usage ;;
    *)
      echo "cluster: unknown command '$command'" >&2
      usage
      ;;
  esac
}

main "$@"
