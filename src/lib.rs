//! ctct-sync: keeps a Constant Contact account in step with a company's backend.
//!
//! Backend services put commands on a RabbitMQ queue; the daemon applies them to the
//! Constant Contact V3 API through a rate-limited client that refreshes its own OAuth2
//! tokens, mirrors the account into SQLite on a schedule, and publishes one result for
//! every command.
//!
//! Map of the crate, in dependency order: each module uses only modules listed above it (its
//! `uses` line names them all; `scripts/import-cycles.py src` checks that no files import each
//! other in a loop).
//!
//! ```text
//! clock      wall-clock time behind a trait (quota day, token expiry); ManualClock for tests
//!              uses nothing
//! histogram  fixed-bucket latency histograms and labelled counters (ops renders them)
//!              uses nothing
//! config     Settings: layered files + environment, validated, secrets redacted
//!              uses nothing
//! telemetry  tracing subscriber (text or JSON, RUST_LOG honoured); log lines go above a
//!            live display on stderr (the progress bars of `ctct-sync mirror`)
//!              uses config
//! command    the message interface: envelope, commands and their field checks, the result
//!              uses nothing
//! store      the SQLite database: one owner thread, embedded migrations; owns the daemon's
//!            tables (tokens, rate budget, command ledger, bulk batches)
//!              uses clock
//! amqp       RabbitMQ: topology, confirmed publishing, events, the command consumer
//!              uses config (and command, in a test)
//! api        Constant Contact client: rate budget, OAuth2 tokens, retries, endpoints, models
//!              uses clock, config, histogram, store
//! mirror     the account copied into SQLite for reporting: runs, passes, schedule, events;
//!            owns the mirror's tables (mirror_runs, mirror_cursors, contacts, …), reached
//!            only through mirror::MirrorDb
//!              uses amqp, api, clock, command (timestamps), config, store
//! handler    applies a checked command to the API (safe to repeat)
//!              uses api, clock, command, mirror, store
//! pipeline   RabbitMQ in, one result out per command: lanes, ledger, retries, parking
//!              uses amqp, api, clock, command, config, handler, histogram, store
//! ops        what a team running ctct-sync watches: /metrics, /healthz, /readyz; systemd
//!              notifications (READY=1, STATUS=, WATCHDOG=1)
//!              uses api, histogram, mirror (its last runs), pipeline, store
//! daemon     Daemon::build: wiring (store → client → handler → pipeline, mirror, ops), signals
//!              uses api, clock, config, handler, mirror, ops, pipeline, store; ctct-sandbox
//! cli        command-line entry points (thin; one function per subcommand)
//!              uses amqp, api, clock, command, config, daemon, mirror, pipeline, store,
//!              telemetry; ctct-sandbox
//! ```
//!
//! The emulator of the Constant Contact V3 API is not a module of this crate: it is the crate
//! `ctct-sandbox` (crates/ctct-sandbox), which uses nothing of ctct-sync. Only `daemon`
//! (`run --sandbox`) and `cli` (`ctct-sync sandbox`) call it, behind the default cargo feature
//! `sandbox`, and the tests use it as a stand-in for Constant Contact.
#![forbid(unsafe_code)]

pub mod amqp;
pub mod api;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod daemon;
pub mod handler;
pub mod histogram;
pub mod mirror;
pub mod ops;
pub mod pipeline;
pub mod store;
pub mod telemetry;
