//! Tests of the PostgreSQL mirror.
