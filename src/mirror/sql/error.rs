//! [`MirrorDbError`]: why a [`super::MirrorDb`] method failed, on either engine.

use super::postgres::PgMirrorError;
use crate::store::StoreError;

/// Why a [`super::MirrorDb`] method failed, on either engine.
#[derive(Debug, thiserror::Error)]
pub enum MirrorDbError {
    /// The SQLite store the mirror's tables live in.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The PostgreSQL mirror store.
    #[error(transparent)]
    Postgres(#[from] PgMirrorError),
}
