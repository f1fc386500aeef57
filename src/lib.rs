//! ctct-sync: keeps a Constant Contact account in step with a company's backend.
//!
//! Backend services put commands on a RabbitMQ queue; the daemon applies them to the
//! Constant Contact V3 API through a rate-limited client that refreshes its own OAuth2
//! tokens, mirrors the account into SQLite on a schedule, and publishes one result for
//! every command.
//!
//! Map of the crate (dependencies point downwards):
//!
//! ```text
//! amqp       RabbitMQ: topology, confirmed publishing, events, the command consumer
//! api        Constant Contact client: rate budget, OAuth2 tokens, retries, operations
//! cli        command-line entry points (thin; one function per subcommand)
//! command    the message interface: envelope, commands and their field checks
//! ops        what a team running ctct-sync watches: /metrics, /healthz, /readyz
//! pipeline   RabbitMQ in, one result out per command: lanes, ledger, retries, parking
//! handler    applies a checked command to the API (safe to repeat)
//! daemon     wiring (store → client → handler → pipeline) and signals
//! config     Settings: layered files + environment, validated, secrets redacted
//! telemetry  tracing subscriber (text or JSON, RUST_LOG honoured)
//! store      the SQLite database: one owner thread, embedded migrations
//! mirror     the account copied into SQLite for reporting: runs, passes, schedule, events
//! sandbox    a faithful local emulator of the Constant Contact V3 API
//! ```
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
pub mod sandbox;
pub mod store;
pub mod telemetry;
