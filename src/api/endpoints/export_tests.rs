//! Tests of the incremental CSV reader: quoting, line endings, BOM, chunk boundaries anywhere,
//! malformed input, bounded memory.

use super::*;

fn parse_in_chunks(input: &[u8], chunk: usize) -> Result<Vec<Vec<String>>, String> {
    let mut parser = CsvParser::default();
    let mut records = Vec::new();
    for piece in input.chunks(chunk.max(1)) {
        parser.feed(piece)?;
        while let Some(record) = parser.next_record() {
            records.push(record);
        }
    }
    parser.finish()?;
    while let Some(record) = parser.next_record() {
        records.push(record);
    }
    Ok(records)
}

fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| row.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

const TRICKY: &[u8] = b"\xEF\xBB\xBFemail_address,first_name,notes\r\n\
pat@example.com,Pat,\"says \"\"hi\"\", twice\"\r\n\
\r\n\
lee@example.com,\"L\xC3\xA9e\",\"two\nlines\"\n\
kim@example.com,,\n\
last@example.com,Last,\"\"";

#[test]
fn quoting_line_breaks_bom_and_blank_lines_parse_the_same_at_every_chunk_size() {
    let expected = rows(&[
        &["email_address", "first_name", "notes"],
        &["pat@example.com", "Pat", "says \"hi\", twice"],
        &["lee@example.com", "Lée", "two\nlines"],
        &["kim@example.com", "", ""],
        &["last@example.com", "Last", ""],
    ]);
    for chunk in 1..=TRICKY.len() {
        assert_eq!(
            parse_in_chunks(TRICKY, chunk).expect("parses"),
            expected,
            "chunk size {chunk}"
        );
    }
}

#[test]
fn a_trailing_line_break_does_not_add_a_record_and_an_empty_body_has_none() {
    assert_eq!(
        parse_in_chunks(b"a,b\n1,2\n", 3).expect("parses"),
        rows(&[&["a", "b"], &["1", "2"]])
    );
    assert_eq!(
        parse_in_chunks(b"a,b\r\n1,2\r\n", 4).expect("parses"),
        rows(&[&["a", "b"], &["1", "2"]])
    );
    assert!(parse_in_chunks(b"", 1).expect("parses").is_empty());
    assert!(parse_in_chunks(BOM, 1).expect("parses").is_empty());
    assert!(parse_in_chunks(b"\n\r\n\n", 1).expect("parses").is_empty());
}

#[test]
fn a_lone_quoted_empty_field_is_a_record_not_a_blank_line() {
    assert_eq!(
        parse_in_chunks(b"email\n\"\"\nx\n", 2).expect("parses"),
        rows(&[&["email"], &[""], &["x"]])
    );
}

#[test]
fn a_short_body_that_only_looks_like_the_start_of_a_bom_is_kept() {
    assert_eq!(
        parse_in_chunks(b"\xEFa", 1).expect("parses"),
        vec![vec!["\u{FFFD}a".to_owned()]]
    );
    assert_eq!(parse_in_chunks(b"ab", 1).expect("parses"), rows(&[&["ab"]]));
}

#[test]
fn stray_quotes_are_kept_as_text() {
    assert_eq!(
        parse_in_chunks(b"a\"b,\"c\"d\n", 1).expect("parses"),
        rows(&[&["a\"b", "cd"]])
    );
}

#[test]
fn a_file_that_ends_inside_quotes_is_an_error() {
    let error = parse_in_chunks(b"a,\"never closed\n", 5).expect_err("unterminated");
    assert!(error.contains("quoted"), "{error}");
}

#[test]
fn a_record_beyond_the_cap_is_refused_instead_of_growing_memory() {
    let mut parser = CsvParser::default();
    parser.feed(b"\"").expect("opening quote");
    let block = vec![b'x'; 64 * 1024];
    let mut refused = false;
    for _ in 0..(MAX_RECORD_BYTES / block.len() + 2) {
        if parser.feed(&block).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "an endless quoted field must be refused");
    assert!(parser.field.capacity() <= MAX_RECORD_BYTES * 2);
}

#[test]
fn records_are_handed_out_as_they_complete_not_at_the_end() {
    let mut parser = CsvParser::default();
    parser.feed(b"h1,h2\nv1,").expect("feeds");
    assert_eq!(
        parser.next_record(),
        Some(vec!["h1".to_owned(), "h2".to_owned()])
    );
    assert_eq!(
        parser.next_record(),
        None,
        "the second record is not complete yet"
    );
    parser.feed(b"v2\n").expect("feeds");
    assert_eq!(
        parser.next_record(),
        Some(vec!["v1".to_owned(), "v2".to_owned()])
    );
}
