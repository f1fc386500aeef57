//! The sandbox's own tests: the emulated Constant Contact API, its OAuth server, limits,
//! faults, admin API and spec conformance. Every API answer in these tests is checked against
//! the spec (`shared/reference`, beside the repository; `CTCT_SPEC_PATH` overrides it).

mod harness;
mod spec;

mod accounts;
mod admin;
mod campaigns;
mod conformance;
mod contacts;
mod deletes;
mod exports;
mod faults;
mod imports;
mod limits;
mod lists_fields;
mod memberships;
mod oauth;
mod official_clients;
mod paging;
mod reports;
mod scale;
mod segments;
mod tags;
