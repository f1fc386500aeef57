# ctct-sync container image: a release build in a full Rust image, run from a slim Debian
# image as a non-root user. Migrations are embedded in the binary; config/ is copied for
# reference and layering, and /var/lib/ctct-sync is the volume for the SQLite database.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependency layer: build against a stub so this layer is cached until Cargo.* change.
COPY Cargo.toml Cargo.lock build.rs ./
COPY migrations ./migrations
COPY config ./config
RUN mkdir -p src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin ctct-sync

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system ctct && useradd --system --gid ctct --home /var/lib/ctct-sync ctct \
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
