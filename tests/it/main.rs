//! One integration-test binary; each module covers one capability.

mod api_budget;
mod api_client;
mod api_ops;
mod api_pace;
mod api_tokens;
mod auth_cli;
mod bad_input;
mod bulk;
mod cli_commands;
mod config;
mod dead_letters;
mod decode_fuzz;
mod docs_messages;
mod doctor;
mod handler;
mod mirror;
mod ops;
mod pg_test_db;
mod pipeline;
mod replies;
mod result_contract;
mod store;
mod store_faults;
mod store_files;
mod store_upgrade;
mod support;
