//! Log audits, in a process of their own. One global subscriber at TRACE captures every line
//! from every thread before any other code runs, and the tests take turns, so each reads
//! exactly the lines its own work wrote. (A per-thread subscriber in the shared test binary
//! can miss lines: tracing caches whether a call site is enabled process-wide, and tests
//! starting in parallel race that cache.)

mod capture;
mod commands;
mod mirror;
mod replies;
mod results;
mod secrets;
#[allow(dead_code)]
#[path = "../it/support/mod.rs"]
mod support;
