# shellcheck shell=bash
# What ctct-sync's tests need on this machine, found or started (and installed from the
# distribution's packages when missing and this user may): sourced by scripts/test (README's
# test command), scripts/dev (README's first command) and .ci/run, so the three never differ.
#
#   test_setup    RabbitMQ on 127.0.0.1:5672 (the system broker: the drill stops and starts
#                 it with rabbitmqctl), RabbitMQ's scripts for the cluster tests, PostgreSQL on
#                 127.0.0.1:5432 with trust authentication for `postgres` and a database
#                 `test`, initdb/pg_ctl and openssl for the TLS tests, and the example
#                 producers' clients
#
# Messages start with "$SETUP_SAYS: " (the caller's name). Packages are installed with
# apt-get as root, or through `sudo -n` when that needs no password; never when
# CTCT_SETUP_INSTALL=no.

SETUP_SAYS=${SETUP_SAYS:-setup}

# Installs the Debian packages named, when this user may; otherwise says what to run and
# returns 1.
install_packages() {
  if [ "${CTCT_SETUP_INSTALL:-yes}" = no ]; then
    echo "$SETUP_SAYS: $* missing and CTCT_SETUP_INSTALL=no: install it (apt-get install $*)" >&2
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$SETUP_SAYS: no apt-get here: install $* with this system's package manager" >&2
    return 1
  fi
  local as=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      as=(sudo -n)
    else
      echo "$SETUP_SAYS: $* missing; install it as root: apt-get install $*" >&2
      return 1
    fi
  fi
  "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    "${as[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

# True when something accepts TCP connections on HOST PORT within 2 s.
port_answers() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

rabbitmq_answers() {
  (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null
}

ensure_rabbitmq() {
  if rabbitmq_answers; then
    echo "$SETUP_SAYS: RabbitMQ answers on 127.0.0.1:5672"
    return
  fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    echo "$SETUP_SAYS: RabbitMQ is not installed; installing rabbitmq-server from Debian packages"
    install_packages rabbitmq-server
  fi
  echo "$SETUP_SAYS: starting RabbitMQ"
  rabbitmq-server -detached || true
  for _ in $(seq 1 120); do
    if rabbitmq_answers; then break; fi
    sleep 1
  done
  rabbitmqctl await_startup --timeout 120 >/dev/null 2>&1 || true
  if ! rabbitmq_answers; then
    echo "$SETUP_SAYS: RabbitMQ did not start on 127.0.0.1:5672" >&2
    exit 1
  fi
  echo "$SETUP_SAYS: RabbitMQ started"
}

# The cluster tests (tests/it/cluster.rs) run three RabbitMQ nodes of their own beside the
# broker on 5672, with scripts/cluster.sh: they need the scripts of the rabbitmq-server package
# (rabbitmq-server, rabbitmqctl, rabbitmq-queues), whether or not the broker on 5672 came
# from it.
ensure_cluster_tools() {
  local sbin=/usr/lib/rabbitmq/bin
  if [ ! -x "$sbin/rabbitmq-server" ] && command -v rabbitmq-server >/dev/null 2>&1; then
    sbin=$(dirname "$(command -v rabbitmq-server)")
  fi
  if [ ! -x "$sbin/rabbitmq-server" ] || [ ! -x "$sbin/rabbitmq-queues" ]; then
    echo "$SETUP_SAYS: the cluster tests need rabbitmq-server and rabbitmq-queues; installing rabbitmq-server from Debian packages"
    install_packages rabbitmq-server
  fi
  # The script finds the tools itself (status fails when it cannot).
  if ! bash scripts/cluster.sh status >/dev/null; then
    echo "$SETUP_SAYS: scripts/cluster.sh cannot find RabbitMQ's scripts: the cluster tests will fail" >&2
    exit 1
  fi
  echo "$SETUP_SAYS: the cluster tests run their nodes with the installed rabbitmq-server"
}

postgres_port_answers() {
  (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
}

postgres_answers() {
  postgres_port_answers &&
    psql -h 127.0.0.1 -U postgres -d test -X -q -t -c 'select 1' >/dev/null 2>&1
}

# Waits until PostgreSQL accepts connections as `postgres` on 127.0.0.1:5432 (the database
# `postgres`, which every cluster has), at most 60 seconds.
await_postgres() {
  local deadline=$((SECONDS + 60))
  until postgres_port_answers &&
    psql -h 127.0.0.1 -U postgres -d postgres -X -q -t -c 'select 1' >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "$SETUP_SAYS: PostgreSQL did not accept connections on 127.0.0.1:5432 within 60 s" >&2
      exit 1
    fi
    sleep 1
  done
}

# Trust authentication for local and 127.0.0.1 connections, and a listener on
# 127.0.0.1:5432, for a cluster this script has just installed (never for one it found).
configure_new_postgres() {
  local version=$1
  local conf_dir="/etc/postgresql/$version/main"
  local hba="$conf_dir/pg_hba.conf"
  {
    echo "# ctct-sync CI: trust local and 127.0.0.1 connections"
    echo "local   all   all                 trust"
    echo "host    all   all   127.0.0.1/32  trust"
    cat "$hba"
  } >"$hba.ci"
  cat "$hba.ci" >"$hba"
  rm -f "$hba.ci"
  mkdir -p "$conf_dir/conf.d"
  printf "listen_addresses = '127.0.0.1'\nport = 5432\n" >"$conf_dir/conf.d/ctct-sync-ci.conf"
}

ensure_postgres() {
  if postgres_answers; then
    echo "$SETUP_SAYS: PostgreSQL answers on 127.0.0.1:5432"
    return
  fi
  local version
  if [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if ! postgres_port_answers; then
      echo "$SETUP_SAYS: PostgreSQL $version is installed but stopped; starting it"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        echo "$SETUP_SAYS: pg_ctlcluster could not start $version/main (it may be starting already)" >&2
    fi
  else
    echo "$SETUP_SAYS: PostgreSQL is not installed; installing postgresql from Debian packages"
    install_packages postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    configure_new_postgres "$version"
    echo "$SETUP_SAYS: starting PostgreSQL $version"
    # The package may have started the cluster before it was configured: restart it so the
    # new authentication and listener take effect.
    if pg_ctlcluster --skip-systemctl-redirect "$version" main status >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main restart
    else
      pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
  fi
  await_postgres
  if [ -z "$(psql -h 127.0.0.1 -U postgres -d postgres -X -q -t -A \
    -c "select 1 from pg_database where datname = 'test'")" ]; then
    echo "$SETUP_SAYS: creating the database test"
    psql -h 127.0.0.1 -U postgres -d postgres -X -q -c 'create database test'
  fi
  if ! postgres_answers; then
    echo "$SETUP_SAYS: PostgreSQL on 127.0.0.1:5432 does not accept 'psql -U postgres -d test'" >&2
    exit 1
  fi
  echo "$SETUP_SAYS: PostgreSQL $version started"
}

# The TLS tests (tests/it/pg_tls.rs) start private PostgreSQL clusters of their own with
# initdb and pg_ctl (the newest /usr/lib/postgresql/*/bin, or CTCT_TEST_PG_BINDIR) and make
# their certificates with the openssl command.
ensure_tls_test_tools() {
  if ! command -v openssl >/dev/null 2>&1; then
    echo "$SETUP_SAYS: openssl is not installed; installing openssl from Debian packages"
    install_packages openssl
  fi
  local bindir=${CTCT_TEST_PG_BINDIR:-}
  if [ -z "$bindir" ]; then
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  if [ -n "$bindir" ] && [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ]; then
    echo "$SETUP_SAYS: the TLS tests start their PostgreSQL clusters with $bindir"
  else
    echo "$SETUP_SAYS: initdb and pg_ctl not found (/usr/lib/postgresql/*/bin or CTCT_TEST_PG_BINDIR):" \
      "the TLS tests will fail; install the Debian package postgresql" >&2
  fi
}

# The clients of the example producers in examples/ (tests/it/examples.rs runs each against a
# daemon, and skips one only when its interpreter or client is missing): pika into this
# Python, amqplib into a directory of its own (CTCT_EXAMPLES_NODE_MODULES), Go and amqp091-go
# from Debian's packages (in /usr/share/gocode, built in GOPATH mode).
# A client that could not be installed: its example's test says SKIPPED, unless
# SETUP_STRICT=1 (CI), where that fails the set-up.
EXAMPLES_NPM_DIR=${CTCT_CI_EXAMPLES_NPM_DIR:-/tmp/ctct-ci-examples-npm}
example_client_missing() {
  if [ "${SETUP_STRICT:-}" = 1 ]; then
    echo "$SETUP_SAYS: could not install $1" >&2
    exit 1
  fi
  echo "$SETUP_SAYS: could not install $1: its example's test will say SKIPPED" >&2
}
ensure_example_clients() {
  if ! python3 -c 'import importlib.metadata as m; assert m.version("pika") == "1.4.4"' 2>/dev/null; then
    echo "$SETUP_SAYS: installing pika 1.4.4 from PyPI (examples/python)"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check pika==1.4.4 ||
      example_client_missing "pika (examples/python)"
  fi
  if [ ! -d "$EXAMPLES_NPM_DIR/node_modules/amqplib" ]; then
    echo "$SETUP_SAYS: installing amqplib 2.3.1 from npm (examples/node)"
    npm install --silent --no-audit --no-fund --prefix "$EXAMPLES_NPM_DIR" amqplib@2.3.1 ||
      example_client_missing "amqplib (examples/node)"
  fi
  if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/rabbitmq/amqp091-go ]; then
    echo "$SETUP_SAYS: installing golang-go and golang-github-rabbitmq-amqp091-go-dev from Debian packages (examples/go)"
    install_packages golang-go golang-github-rabbitmq-amqp091-go-dev ||
      example_client_missing "Go and amqp091-go (examples/go)"
  fi
  export CTCT_EXAMPLES_NODE_MODULES="$EXAMPLES_NPM_DIR/node_modules"
  echo "$SETUP_SAYS: the example producers run with pika, amqplib ($CTCT_EXAMPLES_NODE_MODULES) and amqp091-go"
}
test_setup() {
  ensure_rabbitmq
  ensure_cluster_tools
  ensure_example_clients
  ensure_postgres
  ensure_tls_test_tools
}
