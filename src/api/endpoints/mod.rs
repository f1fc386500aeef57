//! The API's operations as `impl AccountApi` blocks, one file per family. Each builds a
//! [`Request`](crate::api::client::Request) (route template, encoded path, query, JSON body,
//! whether it is safe to repeat) and sends it through the client's one send path.
//!
//! Repeatability (shared/reference/constant-contact-v3.md §3.3, issue 4): GET, PUT, PATCH and
//! DELETE are safe to send twice; every POST is not (creates, sign-up forms, imports, exports,
//! schedules, test sends), so the retry policy never repeats one after an ambiguous failure and
//! the caller resolves it by reading first.
//!
//! ```text
//! contacts       create, get, find by e-mail, update (PUT), delete, sign_up_form, list + pages
//! custom_fields  list + pages, get, create, update (PUT), delete
//! lists          list + pages, get, create, update (PUT), delete (202 activity)
//! activities     JSON import, export, activity status
//! export         the export CSV download, read record by record
//! campaigns      list + pages, get, create, rename, activity get/update, schedules, test sends
//! account        account e-mails, user privileges, account summary
//! reports        campaign summaries + pages, stats by ids (split), tracking + pages, links
//! segments       list + pages, get (read only: segments are made in the UI)
//! tags           list + pages, get, create, rename (PUT), delete (202 activity)
//! ```

mod account;
mod activities;
mod campaigns;
mod contacts;
mod custom_fields;
mod export;
mod lists;
mod reports;
mod segments;
mod tags;

pub use export::ExportDownload;

use crate::api::client::segment;
use crate::api::error::ApiError;

/// Encodes an id as one path segment. An id that cannot name anything (empty, `.`, `..`, which
/// URL normalisation would turn into another path) is answered as not found without spending a
/// request.
fn path_id(route: &'static str, id: &str) -> Result<String, ApiError> {
    if id.is_empty() || id == "." || id == ".." {
        return Err(ApiError::NotFound {
            route,
            error_key: None,
            message: format!("{id:?} is not a resource id"),
        });
    }
    Ok(segment(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_percent_encoded_into_one_segment() {
        assert_eq!(
            path_id("GET /x/{id}", "9d0bc4a2-5a1e-11ef").expect("valid"),
            "9d0bc4a2-5a1e-11ef"
        );
        assert_eq!(
            path_id("GET /x/{id}", "a/b?c#d").expect("valid"),
            "a%2Fb%3Fc%23d"
        );
        assert_eq!(path_id("GET /x/{id}", "a.b").expect("valid"), "a.b");
    }

    #[test]
    fn ids_that_would_change_the_path_are_refused_as_not_found() {
        for id in ["", ".", ".."] {
            let error = path_id("GET /x/{id}", id).expect_err(id);
            assert!(
                matches!(
                    error,
                    ApiError::NotFound {
                        route: "GET /x/{id}",
                        ..
                    }
                ),
                "{id}"
            );
        }
    }
}
