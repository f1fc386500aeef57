//! Contacts: the compact store (`model`), request checks (`input`), write semantics
//! (`write`), JSON rendering (`render`), filtering and cursor paging (`query`) and the HTTP
//! handlers (`handlers`).

pub(crate) mod handlers;
pub(crate) mod input;
pub(crate) mod model;
pub(crate) mod query;
pub(crate) mod render;
pub(crate) mod write;
