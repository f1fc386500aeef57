//! `--json`: commands that take it print one JSON document on stdout instead of their text
//! (docs/operations.md, "Machine-readable output (--json)", lists each document's keys).
//! Each command builds its document from output structs of its own, so that renaming an
//! internal field cannot silently change a key scripts rely on.

use anyhow::Context as _;
use serde::Serialize;

/// Prints `document` on stdout as one pretty-printed JSON document and a line break.
pub fn print(document: &impl Serialize) -> anyhow::Result<()> {
    let text =
        serde_json::to_string_pretty(document).context("could not write the output as JSON")?;
    println!("{text}");
    Ok(())
}

/// A UTC time as the text output shows it: RFC 3339, whole seconds, `Z`.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
