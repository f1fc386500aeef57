# ctct-sync container image: a release build in a full Rust image, run from a slim Debian
# image as the non-root user ctct (uid and gid 10001). Migrations are embedded in the binary;
# config/ is copied for reference and layering, and /var/lib/ctct-sync is the volume for the
# SQLite database. The ops listener (/healthz, /readyz, /metrics) listens on 0.0.0.0:9464 and
# `ctct-sync health` is the health check. docs/operations.md, "Container", describes it.
#
# Lint: hadolint Dockerfile (.ci/run does), with no warning; each rule ignored below says why.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependency layer: every workspace manifest with stub sources, built once, so this layer is
# cached until a Cargo.toml or Cargo.lock changes.
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates/ctct-sandbox/Cargo.toml crates/ctct-sandbox/Cargo.toml
COPY crates/ctct-bench/Cargo.toml crates/ctct-bench/Cargo.toml
COPY migrations ./migrations
COPY config ./config
RUN mkdir -p src crates/ctct-sandbox/src crates/ctct-bench/src \
    && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > crates/ctct-sandbox/src/main.rs && echo '' > crates/ctct-sandbox/src/lib.rs \
    && echo 'fn main() {}' > crates/ctct-bench/src/main.rs \
    && cargo build --release --locked -p ctct-sync \
    && rm -rf src crates/ctct-sandbox/src crates/ctct-bench/src
# The image ships the default build: the daemon with the sandbox inside, so `run --sandbox`
# and `ctct-sync sandbox` work for a demo without credentials. For an image without the
# emulator, build with `cargo build --release --locked -p ctct-sync --no-default-features`.
COPY src ./src
COPY crates/ctct-sandbox/src ./crates/ctct-sandbox/src
COPY crates/ctct-bench/src ./crates/ctct-bench/src
# The manual pages and the bash completion are generated from the binary just built (its
# own command line), so they always describe the commands it has.
RUN touch src/main.rs src/lib.rs crates/ctct-sandbox/src/lib.rs \
    && cargo build --release --locked -p ctct-sync --bin ctct-sync \
    && mkdir -p /src/share/man/man1 /src/share/bash-completion/completions \
    && ./target/release/ctct-sync man --dir /src/share/man/man1 \
    && ./target/release/ctct-sync completions bash > /src/share/bash-completion/completions/ctct-sync

FROM debian:bookworm-slim AS runtime
# The image's version (Cargo.toml's, which tests/it/deploy.rs checks) and where its source is
# published; give the commit with --build-arg REVISION=$(git rev-parse HEAD).
ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=""
LABEL org.opencontainers.image.title="ctct-sync" \
      org.opencontainers.image.description="Applies commands queued on RabbitMQ to the Constant Contact V3 API and mirrors the account into SQLite or PostgreSQL" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}"
# The user ctct is uid and gid 10001, outside the range of the base image's system users and
# of most hosts' own: Kubernetes' runAsNonRoot needs a number to check
# (deploy/k8s/deployment.yaml), and a high fixed uid never matches a host account.
# --no-log-init keeps a high uid from growing /var/log/faillog and lastlog into large files.
# DL3008 (pin apt package versions) is ignored: Debian stable replaces a package's version
# with each security update and drops the old one from the archive (ca-certificates went from
# 20230311+deb12u1 to 20250419~deb12u2 within bookworm), so a pinned version stops building;
# the base image's tag already fixes the release, and the packages get its security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ctct \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/ctct-sync \
       --shell /usr/sbin/nologin ctct \
    && mkdir -p /var/lib/ctct-sync && chown 10001:10001 /var/lib/ctct-sync && chmod 0700 /var/lib/ctct-sync
COPY --from=build /src/target/release/ctct-sync /usr/local/bin/ctct-sync
COPY --from=build /src/share /usr/local/share
COPY config /etc/ctct-sync
# Settings for the container (CTCT_SYNC__<SECTION>__<KEY>, config/default.toml): the store on
# the volume, JSON logs, and the ops listener on every address so that the published port,
# Prometheus and the orchestrator's probes reach it (the default is loopback only).
ENV CTCT_SYNC__STORE__PATH=/var/lib/ctct-sync/ctct-sync.db \
    CTCT_SYNC__LOG__FORMAT=json \
    CTCT_SYNC__OPS__LISTEN=0.0.0.0:9464
# The ops listener: /healthz (alive), /readyz (ready to work), /metrics (Prometheus).
EXPOSE 9464
# The volume is created owned by ctct, so a new named volume takes that owner.
VOLUME ["/var/lib/ctct-sync"]
USER 10001:10001
WORKDIR /var/lib/ctct-sync
# Alive: /healthz answers 200 (`ctct-sync health` asks ops.listen on loopback; there is no
# curl in the image). Readiness (/readyz) is for orchestrators that route work or wait on it:
# deploy/compose.yaml and deploy/k8s/deployment.yaml ask it themselves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/ctct-sync", "health"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ctct-sync"]
CMD ["run"]
