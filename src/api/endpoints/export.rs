//! The contact-export download (`GET /contact_exports/{id}`, `text/csv`,
//! shared/reference/constant-contact-v3.md §7.2), read record by record as the body arrives.
//!
//! An export may hold a million contacts, so nothing here holds more than the chunk being read
//! and the record being built: [`CsvParser`] is an incremental RFC 4180 reader (quoted fields,
//! doubled quotes, line breaks inside quotes, CRLF or LF, a leading UTF-8 BOM, blank lines
//! skipped) with a cap on the size of one record, so a broken stream cannot grow memory without
//! bound.

use std::collections::VecDeque;

use crate::api::error::ApiError;

/// The longest record accepted (a contact row is a few kilobytes at most).
const MAX_RECORD_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// An export file being downloaded: its header row, then its records one at a time.
#[derive(Debug)]
pub struct ExportDownload {
    route: &'static str,
    response: reqwest::Response,
    parser: CsvParser,
    header: Vec<String>,
    finished: bool,
    bytes_read: u64,
}

impl ExportDownload {
    /// Wraps the answer and reads the header row.
    pub(crate) async fn open(
        route: &'static str,
        response: reqwest::Response,
    ) -> Result<Self, ApiError> {
        let mut download = Self {
            route,
            response,
            parser: CsvParser::default(),
            header: Vec::new(),
            finished: false,
            bytes_read: 0,
        };
        download.header = download.read_record().await?.unwrap_or_default();
        Ok(download)
    }

    /// The column names (empty for an empty file).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The position of a column, by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|column| column == name)
    }

    /// Bytes of the body read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next record, or `None` at the end of the file. A connection lost mid-body is a
    /// [`ApiError::Transport`]; a malformed file an [`ApiError::Decode`].
    pub async fn next_record(&mut self) -> Result<Option<Vec<String>>, ApiError> {
        self.read_record().await
    }

    async fn read_record(&mut self) -> Result<Option<Vec<String>>, ApiError> {
        let route = self.route;
        let decode = |detail: String| ApiError::Decode { route, detail };
        loop {
            if let Some(record) = self.parser.next_record() {
                return Ok(Some(record));
            }
            if self.finished {
                return Ok(None);
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    self.bytes_read += chunk.len() as u64;
                    self.parser.feed(&chunk).map_err(decode)?;
                }
                Ok(None) => {
                    self.finished = true;
                    self.parser.finish().map_err(decode)?;
                }
                Err(e) => {
                    return Err(ApiError::Transport {
                        route,
                        maybe_applied: false,
                        attempts: 1,
                        detail: format!(
                            "export body broke off after {} bytes: {}",
                            self.bytes_read,
                            e.without_url()
                        ),
                    });
                }
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: either the end of the field or the first half of `""`.
    QuoteInQuoted,
}

/// An incremental CSV reader: feed it chunks, take complete records out.
#[derive(Debug, Default)]
pub(crate) struct CsvParser {
    state: State,
    field: Vec<u8>,
    record: Vec<String>,
    record_bytes: usize,
    ready: VecDeque<Vec<String>>,
    /// The previous byte ended a line with `\r`; a following `\n` belongs to it.
    skip_lf: bool,
    /// The current record has had any byte other than its line break.
    content: bool,
    /// Bytes held back at the very start until it is known whether they are a BOM.
    prefix: Vec<u8>,
    started: bool,
}

impl CsvParser {
    /// Reads one chunk of the body.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), String> {
        if self.started {
            return self.process(chunk);
        }
        self.prefix.extend_from_slice(chunk);
        if self.prefix.len() < BOM.len() && BOM.starts_with(&self.prefix) {
            return Ok(());
        }
        self.start()
    }

    /// Ends the input: the last record may lack its line break; an open quote is an error.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        if !self.started {
            self.start()?;
        }
        match self.state {
            State::Quoted => Err("the file ends inside a quoted field".to_owned()),
            State::Unquoted | State::QuoteInQuoted => {
                self.end_record();
                Ok(())
            }
            State::FieldStart => {
                if self.content {
                    self.end_record();
                }
                Ok(())
            }
        }
    }

    /// The next complete record, if one is ready.
    pub(crate) fn next_record(&mut self) -> Option<Vec<String>> {
        self.ready.pop_front()
    }

    fn start(&mut self) -> Result<(), String> {
        self.started = true;
        let prefix = std::mem::take(&mut self.prefix);
        self.process(prefix.strip_prefix(BOM).unwrap_or(&prefix))
    }

    fn process(&mut self, bytes: &[u8]) -> Result<(), String> {
        for &byte in bytes {
            if std::mem::take(&mut self.skip_lf) && byte == b'\n' {
                continue;
            }
            if (byte != b'\n' && byte != b'\r') || self.state == State::Quoted {
                self.content = true;
            }
            match (self.state, byte) {
                (State::FieldStart, b'"') => self.state = State::Quoted,
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted, b',') => {
                    self.end_field()
                }
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted, b'\n' | b'\r') => {
                    self.skip_lf = byte == b'\r';
                    self.end_record();
                }
                (State::Quoted, b'"') => self.state = State::QuoteInQuoted,
                (State::QuoteInQuoted, b'"') => {
                    self.push(b'"')?;
                    self.state = State::Quoted;
                }
                (State::Quoted, _) => self.push(byte)?,
                // Lenient: a stray quote inside an unquoted field, or text after a closing
                // quote, is kept as text.
                (State::FieldStart | State::Unquoted | State::QuoteInQuoted, _) => {
                    self.push(byte)?;
                    self.state = State::Unquoted;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, byte: u8) -> Result<(), String> {
        self.record_bytes += 1;
        if self.record_bytes > MAX_RECORD_BYTES {
            return Err(format!("a record is longer than {MAX_RECORD_BYTES} bytes"));
        }
        self.field.push(byte);
        Ok(())
    }

    fn end_field(&mut self) {
        let field = std::mem::take(&mut self.field);
        // Exports are UTF-8; a stray invalid byte must not lose the whole record.
        let text = String::from_utf8(field)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        self.record.push(text);
        self.state = State::FieldStart;
    }

    fn end_record(&mut self) {
        self.end_field();
        let record = std::mem::take(&mut self.record);
        self.record_bytes = 0;
        // A blank line (nothing at all between two line breaks) is skipped.
        if std::mem::take(&mut self.content) {
            self.ready.push_back(record);
        }
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
