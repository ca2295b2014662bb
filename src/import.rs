//! CSV imports read as they arrive: the `csv` crate parses on a blocking thread from a reader (a
//! request body bridged from its stream, or a file) and hands rows over in batches through a
//! bounded channel, so a large file is never held whole and a slow database slows the reading.
//! The services that import (the do-not-call list, list members) say what a row means.

use std::io::Read;

use futures_util::TryStreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

/// Batches waiting for the writer: the reader runs at most this far ahead.
const AHEAD: usize = 2;
/// Refused rows an import reports by line (the count covers them all).
pub const ROW_ERRORS_REPORTED: usize = 1000;

/// One data row: its line in the file (the header is line 1) and its fields, or why it could
/// not be read.
pub type Row = (u64, Result<csv::StringRecord, String>);

/// Why a CSV could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{0}")]
    Unreadable(String),
    /// More than the import's byte limit arrived (the rows before were handed on already).
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// A CSV's header row and the rest of its rows, batch by batch.
pub struct CsvRows {
    headers: csv::StringRecord,
    batches: mpsc::Receiver<Result<Vec<Row>, CsvError>>,
}

impl CsvRows {
    /// Starts reading `input` (at most `limit` bytes) on a blocking thread; fails when there is no
    /// header row.
    pub async fn read(input: impl Read + Send + 'static, limit: u64, batch: usize) -> Result<CsvRows, CsvError> {
        let (header_tx, header_rx) = oneshot::channel();
        let (tx, batches) = mpsc::channel(AHEAD);
        tokio::task::spawn_blocking(move || read_rows(input, limit, batch.max(1), header_tx, tx));
        let headers = header_rx
            .await
            .map_err(|_| CsvError::Unreadable("the reader stopped".into()))??;
        Ok(CsvRows { headers, batches })
    }

    /// Reads a request body as it streams in.
    pub async fn from_body(body: axum::body::Body, limit: u64, batch: usize) -> Result<CsvRows, CsvError> {
        let stream = body.into_data_stream().map_err(std::io::Error::other);
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
        Self::read(reader, limit, batch).await
    }

    /// The position of a column, by name (case aside).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h.trim().eq_ignore_ascii_case(name))
    }

    pub fn headers(&self) -> &csv::StringRecord {
        &self.headers
    }

    /// The next batch of rows; `None` at the end of the file.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<Row>, CsvError>> {
        self.batches.recv().await
    }
}

fn read_rows(
    input: impl Read,
    limit: u64,
    batch: usize,
    header_tx: oneshot::Sender<Result<csv::StringRecord, CsvError>>,
    tx: mpsc::Sender<Result<Vec<Row>, CsvError>>,
) {
    // One byte over the limit is read to tell "exactly the limit" from "more".
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input.take(limit.saturating_add(1)));
    let headers = match reader.headers() {
        Ok(h) if h.iter().any(|f| !f.is_empty()) => h.clone(),
        Ok(_) => {
            let _ = header_tx.send(Err(CsvError::Unreadable("the file has no header row".into())));
            return;
        }
        Err(e) => {
            let _ = header_tx.send(Err(CsvError::Unreadable(format!("the header row cannot be read: {e}"))));
            return;
        }
    };
    if header_tx.send(Ok(headers)).is_err() {
        return;
    }
    let mut rows = Vec::with_capacity(batch);
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        let read = reader.read_record(&mut record);
        if reader.position().byte() > limit {
            let _ = tx.blocking_send(Err(CsvError::TooLarge { limit }));
            return;
        }
        match read {
            Ok(false) => break,
            Ok(true) if record.iter().all(str::is_empty) => continue,
            Ok(true) => rows.push((first_line(&record, reader.position().line(), line), Ok(record.clone()))),
            // A broken body (the client went away) ends the import; a bad row is reported.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                let _ = tx.blocking_send(Err(CsvError::Unreadable(format!("reading the file failed: {e}"))));
                return;
            }
            Err(e) => rows.push((line, Err(format!("not CSV: {e}")))),
        }
        if rows.len() == batch && tx.blocking_send(Ok(std::mem::take(&mut rows))).is_err() {
            return;
        }
    }
    if !rows.is_empty() {
        let _ = tx.blocking_send(Ok(rows));
    }
}

/// The line a record starts on. The reader's own start position counts blank lines before the
/// record as its start, so it is worked back from where the record ended (the line after it,
/// less the line breaks inside its fields); a last record with no line break after it has not
/// moved the reader to a new line, hence the larger of the two. (One case stays a line early: a
/// last record with no line break after it that follows a blank line.)
fn first_line(record: &csv::StringRecord, line_after: u64, fallback: u64) -> u64 {
    let breaks: u64 = record.iter().map(|f| f.matches('\n').count() as u64).sum();
    let scanned_from = record.position().map_or(fallback, |p| p.line());
    scanned_from.max(line_after.saturating_sub(1 + breaks))
}

/// A row that was not imported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowError {
    /// The row's line in the file (the header is line 1).
    pub row: u64,
    pub reason: String,
}

/// Refused rows: all counted, the first [`ROW_ERRORS_REPORTED`] kept.
#[derive(Debug, Default)]
pub struct Refused {
    pub count: u64,
    pub rows: Vec<RowError>,
}

impl Refused {
    pub fn add(&mut self, row: u64, reason: impl Into<String>) {
        self.count += 1;
        if self.rows.len() < ROW_ERRORS_REPORTED {
            self.rows.push(RowError {
                row,
                reason: reason.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(csv: &str, limit: u64) -> (Vec<String>, Vec<(u64, Result<Vec<String>, String>)>, Option<String>) {
        let mut rows = match CsvRows::read(std::io::Cursor::new(csv.to_owned()), limit, 2).await {
            Ok(r) => r,
            Err(e) => return (vec![], vec![], Some(e.to_string())),
        };
        let headers = rows.headers().iter().map(str::to_owned).collect();
        let mut out = Vec::new();
        while let Some(batch) = rows.next_batch().await {
            match batch {
                Ok(b) => out.extend(
                    b.into_iter()
                        .map(|(line, r)| (line, r.map(|r| r.iter().map(str::to_owned).collect()))),
                ),
                Err(e) => return (headers, out, Some(e.to_string())),
            }
        }
        (headers, out, None)
    }

    #[tokio::test]
    async fn rows_come_in_batches_with_their_lines() {
        let (headers, rows, err) = all("a,b\n1,2\n\n\"x\ny\",3\n4\n5,6\n", 1 << 20).await;
        assert_eq!(headers, ["a", "b"]);
        assert_eq!(err, None);
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        // The blank line is skipped; the quoted field spans lines 4 and 5.
        assert_eq!(lines, [2, 4, 6, 7]);
        assert_eq!(rows[1].1.as_ref().unwrap(), &["x\ny", "3"]);
        assert_eq!(rows[2].1.as_ref().unwrap(), &["4"]);
        // No line break at the end.
        let (_, rows, _) = all("a\n1\n2", 1 << 20).await;
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
    }

    #[tokio::test]
    async fn no_header_or_too_large_is_an_error() {
        assert!(all("", 100).await.2.unwrap().contains("no header"));
        let big = format!("a\n{}", "1\n".repeat(100));
        let (_, rows, err) = all(&big, 50).await;
        assert!(err.unwrap().contains("larger than 50"));
        assert!(rows.len() < 25, "{}", rows.len());
        assert_eq!(all("a\n1\n", 4).await.2, None, "exactly the limit is fine");
    }
}
