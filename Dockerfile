# ctct-sync container image: a release build in a full Rust image, run from a slim Debian
# image as a non-root user. Migrations are embedded in the binary; config/ is copied for
# reference and layering, and /var/lib/ctct-sync is the volume for the SQLite database.

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
RUN touch src/main.rs src/lib.rs crates/ctct-sandbox/src/lib.rs \
    && cargo build --release --locked -p ctct-sync --bin ctct-sync

FROM debian:bookworm-slim AS runtime
# The user ctct is uid and gid 999 (the number --system gave it before it was written down):
# Kubernetes' runAsNonRoot needs a number to check (deploy/k8s/deployment.yaml).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 999 ctct \
    && useradd --system --uid 999 --gid ctct --home /var/lib/ctct-sync ctct \
    && mkdir -p /var/lib/ctct-sync && chown ctct:ctct /var/lib/ctct-sync && chmod 0700 /var/lib/ctct-sync
COPY --from=build /src/target/release/ctct-sync /usr/local/bin/ctct-sync
COPY config /etc/ctct-sync
ENV CTCT_SYNC__STORE__PATH=/var/lib/ctct-sync/ctct-sync.db \
    CTCT_SYNC__LOG__FORMAT=json
VOLUME ["/var/lib/ctct-sync"]
USER ctct
WORKDIR /var/lib/ctct-sync
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/ctct-sync"]
CMD ["run"]
