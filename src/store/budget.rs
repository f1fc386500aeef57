//! SQL for the API key's daily request budget (`rate_budget`).

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// The stored state of one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayBudget {
    /// Requests reserved so far (an upper bound of requests sent).
    pub reserved: u32,
    /// The API answered `quota_exceeded` on this day.
    pub exhausted: bool,
}

pub fn load_day(
    conn: &Connection,
    client_id: &str,
    day: NaiveDate,
) -> Result<DayBudget, StoreError> {
    let row = conn
        .query_row(
            "SELECT reserved, exhausted_at IS NOT NULL FROM rate_budget WHERE client_id = ?1 AND day = ?2",
            params![client_id, day.to_string()],
            |r| Ok(DayBudget { reserved: r.get(0)?, exhausted: r.get(1)? }),
        )
        .optional()?;
    Ok(row.unwrap_or_default())
}

/// Raises the day's reservation to at least `up_to` and returns the stored value.
pub fn reserve(
    conn: &Connection,
    client_id: &str,
    day: NaiveDate,
    up_to: u32,
) -> Result<u32, StoreError> {
    Ok(conn.query_row(
        "INSERT INTO rate_budget (client_id, day, reserved) VALUES (?1, ?2, ?3)
         ON CONFLICT (client_id, day) DO UPDATE SET reserved = max(reserved, excluded.reserved)
         RETURNING reserved",
        params![client_id, day.to_string(), up_to],
        |r| r.get(0),
    )?)
}

/// Records that the API refused a request with `quota_exceeded` on `day`.
pub fn mark_exhausted(
    conn: &Connection,
    client_id: &str,
    day: NaiveDate,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rate_budget (client_id, day, reserved, exhausted_at) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT (client_id, day) DO UPDATE SET exhausted_at = coalesce(exhausted_at, excluded.exhausted_at)",
        params![client_id, day.to_string(), at.to_rfc3339()],
    )?;
    Ok(())
}
