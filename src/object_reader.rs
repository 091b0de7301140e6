//! Reading S3 objects as a stream of lines.
//!
//! An object is never held in memory whole: the body is read through a
//! buffer, gzip is decompressed on the fly, and each line is copied into one
//! reusable buffer of at most `max_line_bytes`. A longer line is skipped to
//! its end and reported, not buffered without bound.
//!
//! Limits guard against hostile or broken objects: a maximum size (as
//! stored and after decompression) and a maximum decompressed/compressed
//! ratio, so a gzip bomb is refused after a few megabytes instead of being
//! expanded. Memory stays bounded whatever the object.
//!
//! A body that stops sending fails the read after [`Limits::idle_timeout`]
//! without a byte (`FLEETWATCH_S3_IDLE_TIMEOUT`), as a transient error: the
//! message is retried. It is an idle timeout, not a total one, so a 1 GiB
//! object streams for as long as bytes keep coming, and only time spent
//! waiting for bytes counts, never the caller's pauses between reads.
//!
//! The line reader is generic over any `AsyncRead`, so it is tested without
//! S3; [`open`] is the only piece that talks to S3.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_compression::tokio::bufread::GzipDecoder;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader, ReadBuf};
use tokio::time::Sleep;

use crate::failure::{Classify, Dependency, FailureClass, StepError, classify_sdk};
use crate::metrics;
use crate::notification::ObjectRef;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const READ_BUFFER: usize = 64 * 1024;

/// Limits on reading one object: what it may contain, and how long its
/// body may go silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, in bytes (without its line ending).
    pub max_line_bytes: usize,
    /// Largest object, as stored and after decompression.
    pub max_object_bytes: u64,
    /// Largest decompressed/compressed ratio for gzip objects.
    pub max_gzip_ratio: u64,
    /// Longest wait for the body's next bytes (`FLEETWATCH_S3_IDLE_TIMEOUT`):
    /// a stalled stream fails instead of holding its message for ever.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: 64 * 1024,
            max_object_bytes: 1 << 30,
            max_gzip_ratio: 100,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Decompressed bytes allowed before the ratio is judged: small gzip files
/// of very repetitive text legitimately compress far beyond any ratio.
const RATIO_GRACE_BYTES: u64 = 4 * 1024 * 1024;

/// Which limit an object broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBroken {
    ObjectTooLarge,
    GzipRatio,
}

impl LimitBroken {
    /// The `reason` label of `fleetwatch_objects_rejected_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitBroken::ObjectTooLarge => "object_too_large",
            LimitBroken::GzipRatio => "gzip_ratio",
        }
    }
}

/// Why an object could not be read (to its end).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The bucket or key does not exist (anymore): nothing to redo.
    #[error("s3://{bucket}/{key} does not exist ({code})")]
    Missing {
        bucket: String,
        key: String,
        code: String,
    },
    /// S3 or the network failed, or the body stalled; the same read may
    /// succeed later.
    #[error("reading s3://{bucket}/{key} failed: {message}")]
    Transient {
        bucket: String,
        key: String,
        message: String,
        /// `Throttled` when S3 asked us to slow down, else `Transient`.
        class: FailureClass,
    },
    /// The bytes themselves are broken (a truncated or corrupt gzip stream):
    /// reading again gives the same result.
    #[error("s3://{bucket}/{key} is corrupt: {message}")]
    Corrupt {
        bucket: String,
        key: String,
        message: String,
    },
    /// The object breaks a limit; reading stopped there.
    #[error("s3://{bucket}/{key} was refused: {message}")]
    Limit {
        bucket: String,
        key: String,
        limit: LimitBroken,
        message: String,
    },
}

impl Classify for ReadError {
    fn class(&self) -> FailureClass {
        match self {
            ReadError::Transient { class, .. } => *class,
            // Reading again gives the same bytes (or the same absence).
            ReadError::Missing { .. } | ReadError::Corrupt { .. } | ReadError::Limit { .. } => {
                FailureClass::Permanent
            }
        }
    }
}

impl StepError for ReadError {
    fn dependency(&self) -> Dependency {
        Dependency::S3
    }
}

/// One line of an object, as the reader found it.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A non-blank line, without its line ending (and without a leading BOM).
    Text { number: u64, text: &'a str },
    /// Longer than the limit; its bytes were skipped.
    TooLong { number: u64, bytes: u64 },
    /// Not valid UTF-8.
    InvalidUtf8 { number: u64 },
}

/// What S3 said about an object, with its body.
pub struct ObjectBody {
    /// What S3 says the object's length is: checked against the
    /// size limit before any byte is read.
    pub content_length: Option<i64>,
    /// The bytes, streamed: an object is never held whole in memory.
    pub body: Box<dyn AsyncRead + Send + Unpin>,
}

/// Starts a `GetObject` for `object` and returns its streaming body.
pub async fn open(s3: &aws_sdk_s3::Client, object: &ObjectRef) -> Result<ObjectBody, ReadError> {
    let mut request = s3.get_object().bucket(&object.bucket).key(&object.key);
    // Read the exact version the notification announced when there is one,
    // so a later overwrite cannot change what this message stands for.
    if let Some(version) = object
        .version_id
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "null")
    {
        request = request.version_id(version);
    }
    match request.send().await {
        Ok(output) => Ok(ObjectBody {
            content_length: output.content_length(),
            body: Box::new(output.body.into_async_read()),
        }),
        Err(err) => {
            let code = err.code().unwrap_or_default().to_owned();
            let missing = err.as_service_error().is_some_and(|e| e.is_no_such_key())
                || matches!(
                    code.as_str(),
                    "NoSuchKey" | "NoSuchBucket" | "NoSuchVersion"
                )
                || err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 404);
            if missing {
                let code = if code.is_empty() {
                    "404 Not Found".to_owned()
                } else {
                    code
                };
                Err(ReadError::Missing {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    code,
                })
            } else {
                let class = match classify_sdk(&err) {
                    FailureClass::Throttled => FailureClass::Throttled,
                    _ => FailureClass::Transient,
                };
                Err(ReadError::Transient {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    message: DisplayErrorContext(&err).to_string(),
                    class,
                })
            }
        }
    }
}

/// Splits a byte stream into lines, decompressing gzip when the stream
/// starts with the gzip magic bytes.
pub struct LineReader {
    reader: Box<dyn AsyncBufRead + Send + Unpin>,
    source: SourceStats,
    gzip: bool,
    limits: Limits,
    /// Bytes consumed after decompression.
    decoded_bytes: u64,
    line_number: u64,
    buf: Vec<u8>,
    bucket: String,
    key: String,
}

impl LineReader {
    /// Wraps `body`. Whether it is gzip is decided by its first two bytes:
    /// that is what is actually there, whatever `Content-Encoding` or the
    /// key's suffix claim (both are only hints and are sometimes wrong).
    pub async fn new(
        body: Box<dyn AsyncRead + Send + Unpin>,
        limits: Limits,
        object: &ObjectRef,
    ) -> Result<LineReader, ReadError> {
        let source = SourceStats::default();
        let mut raw = BufReader::with_capacity(
            READ_BUFFER,
            TrackedRead {
                inner: body,
                stats: source.clone(),
                idle_timeout: limits.idle_timeout,
                idle: None,
                waiting: false,
            },
        );
        let gzip = match raw.fill_buf().await {
            Ok(head) => head.starts_with(&GZIP_MAGIC),
            Err(e) => {
                return Err(ReadError::Transient {
                    bucket: object.bucket.clone(),
                    key: object.key.clone(),
                    message: e.to_string(),
                    class: FailureClass::Transient,
                });
            }
        };
        let reader: Box<dyn AsyncBufRead + Send + Unpin> = if gzip {
            let mut decoder = GzipDecoder::new(raw);
            // `cat a.gz b.gz` is a valid gzip file; read every member.
            decoder.multiple_members(true);
            Box::new(BufReader::with_capacity(READ_BUFFER, decoder))
        } else {
            Box::new(raw)
        };
        Ok(LineReader {
            reader,
            source,
            gzip,
            limits,
            decoded_bytes: 0,
            line_number: 0,
            buf: Vec::with_capacity(1024),
            bucket: object.bucket.clone(),
            key: object.key.clone(),
        })
    }

    /// Whether the object was gzip.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// The number of the last line read (blank lines count).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }

    /// Bytes read from the source so far (compressed size for gzip).
    pub fn source_bytes(&self) -> u64 {
        self.source.bytes.load(Ordering::Relaxed)
    }

    /// The next non-blank line, or `None` at the end of the object.
    pub async fn next_line(&mut self) -> Result<Option<Line<'_>>, ReadError> {
        // Find the line first and borrow the buffer only once found, so the
        // returned `&str` does not hold `self` across loop iterations.
        let (number, start) = loop {
            let Some(outcome) = self.read_raw_line().await? else {
                return Ok(None);
            };
            self.line_number += 1;
            let number = self.line_number;
            if let RawLine::TooLong(bytes) = outcome {
                return Ok(Some(Line::TooLong { number, bytes }));
            }
            let start = if number == 1 && self.buf.starts_with(UTF8_BOM) {
                UTF8_BOM.len()
            } else {
                0
            };
            if !self.buf[start..].iter().all(u8::is_ascii_whitespace) {
                break (number, start);
            }
        };
        Ok(Some(match std::str::from_utf8(&self.buf[start..]) {
            Ok(text) => Line::Text { number, text },
            Err(_) => Line::InvalidUtf8 { number },
        }))
    }

    /// Reads up to the next `\n` into `self.buf` (without `\n` or `\r\n`).
    async fn read_raw_line(&mut self) -> Result<Option<RawLine>, ReadError> {
        self.buf.clear();
        let mut seen_any = false;
        let mut skipped: Option<u64> = None;
        // One byte of slack for a `\r` that will be stripped.
        let limit = self.limits.max_line_bytes + 1;
        loop {
            let available = match self.reader.fill_buf().await {
                Ok(a) => a,
                Err(e) => return Err(self.classify(e)),
            };
            if available.is_empty() {
                if !seen_any {
                    return Ok(None);
                }
                break;
            }
            seen_any = true;
            let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            match skipped.as_mut() {
                Some(total) => *total += chunk.len() as u64,
                None if self.buf.len() + chunk.len() > limit => {
                    skipped = Some((self.buf.len() + chunk.len()) as u64);
                    self.buf.clear();
                }
                None => self.buf.extend_from_slice(chunk),
            }
            self.reader.consume(consumed);
            self.decoded_bytes += consumed as u64;
            self.check_limits()?;
            if done {
                break;
            }
        }
        if let Some(bytes) = skipped {
            return Ok(Some(RawLine::TooLong(bytes)));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.len() > self.limits.max_line_bytes {
            return Ok(Some(RawLine::TooLong(self.buf.len() as u64)));
        }
        Ok(Some(RawLine::Line))
    }

    /// Stops reading an object over a limit, checked as bytes are consumed
    /// so the work done on a hostile object is bounded too.
    fn check_limits(&self) -> Result<(), ReadError> {
        let max = self.limits.max_object_bytes;
        let stored = self.source_bytes();
        let broken = if self.decoded_bytes > max || stored > max {
            Some((
                LimitBroken::ObjectTooLarge,
                format!("more than {max} bytes (FLEETWATCH_MAX_OBJECT_BYTES)"),
            ))
        } else if self.gzip
            && self.decoded_bytes > RATIO_GRACE_BYTES
            && self.decoded_bytes > stored.max(1).saturating_mul(self.limits.max_gzip_ratio)
        {
            Some((
                LimitBroken::GzipRatio,
                format!(
                    "{} bytes decompressed from {stored}: more than {}:1 (FLEETWATCH_MAX_GZIP_RATIO), a likely gzip bomb",
                    self.decoded_bytes, self.limits.max_gzip_ratio
                ),
            ))
        } else {
            None
        };
        match broken {
            None => Ok(()),
            Some((limit, message)) => Err(ReadError::Limit {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                limit,
                message,
            }),
        }
    }

    /// An I/O error is the network's fault when the underlying body failed,
    /// and the data's fault when only the decompressor did.
    fn classify(&self, e: std::io::Error) -> ReadError {
        if self.source.failed.load(Ordering::Relaxed) {
            ReadError::Transient {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                message: e.to_string(),
                class: FailureClass::Transient,
            }
        } else {
            ReadError::Corrupt {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                message: e.to_string(),
            }
        }
    }
}

enum RawLine {
    Line,
    TooLong(u64),
}

/// Counts the bytes read from the source and remembers whether it failed.
#[derive(Debug, Clone, Default)]
struct SourceStats {
    bytes: Arc<AtomicU64>,
    failed: Arc<AtomicBool>,
}

/// The source as read: counts its bytes, remembers whether it failed, and
/// fails it when it keeps the reader waiting for `idle_timeout`.
struct TrackedRead {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    stats: SourceStats,
    /// How long one wait for bytes may last.
    idle_timeout: Duration,
    /// The deadline of the current wait; allocated on the first wait and
    /// reset for each later one.
    idle: Option<Pin<Box<Sleep>>>,
    /// Whether the reader is waiting now (the last poll was `Pending`), so
    /// the deadline runs from the start of the wait, not from each poll.
    waiting: bool,
}

impl AsyncRead for TrackedRead {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        // The source first: bytes that arrived while nobody was reading
        // (the caller was busy elsewhere) are never a stall.
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => {
                self.waiting = false;
                let n = (buf.filled().len() - before) as u64;
                self.stats.bytes.fetch_add(n, Ordering::Relaxed);
            }
            Poll::Ready(Err(_)) => self.stats.failed.store(true, Ordering::Relaxed),
            Poll::Pending => return self.poll_idle(cx),
        }
        result
    }
}

impl TrackedRead {
    /// The source is not ready: start (or go on with) the wait, and fail
    /// the read once it has lasted `idle_timeout`.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let deadline = tokio::time::Instant::now() + self.idle_timeout;
        let starting = !self.waiting;
        self.waiting = true;
        let idle = match &mut self.idle {
            Some(idle) => {
                if starting {
                    idle.as_mut().reset(deadline);
                }
                idle
            }
            None => self
                .idle
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if idle.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.stats.failed.store(true, Ordering::Relaxed);
        metrics::aws_timeout("s3", "body_idle");
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the body sent nothing for {:.1} s (FLEETWATCH_S3_IDLE_TIMEOUT); the read will be retried",
                self.idle_timeout.as_secs_f64()
            ),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn object() -> ObjectRef {
        ObjectRef {
            bucket: "b".into(),
            key: "k".into(),
            version_id: None,
        }
    }

    async fn lines(data: Vec<u8>, max: usize) -> Result<Vec<String>, ReadError> {
        let limits = Limits {
            max_line_bytes: max,
            ..Limits::default()
        };
        lines_with(data, limits).await
    }

    async fn lines_with(data: Vec<u8>, limits: Limits) -> Result<Vec<String>, ReadError> {
        let mut reader =
            LineReader::new(Box::new(std::io::Cursor::new(data)), limits, &object()).await?;
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await? {
            out.push(match line {
                Line::Text { number, text } => format!("{number}:{text}"),
                Line::TooLong { number, bytes } => format!("{number}:too long ({bytes})"),
                Line::InvalidUtf8 { number } => format!("{number}:invalid utf-8"),
            });
        }
        Ok(out)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn crlf_bom_and_blank_lines() {
        let data = b"\xEF\xBB\xBFfirst\r\n\r\n   \nsecond\r\nthird".to_vec();
        assert_eq!(
            lines(data, 100).await.unwrap(),
            ["1:first", "4:second", "5:third"]
        );
    }

    #[tokio::test]
    async fn empty_object_has_no_lines() {
        assert!(lines(Vec::new(), 100).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn long_lines_are_skipped_not_buffered() {
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 200_000));
        data.extend(b"\nafter\n");
        assert_eq!(
            lines(data, 100).await.unwrap(),
            ["1:ok", "2:too long (200000)", "3:after"]
        );
        // Exactly at the limit, with CRLF, is fine.
        let data = [vec![b'y'; 100], b"\r\n".to_vec()].concat();
        assert_eq!(lines(data, 100).await.unwrap().len(), 1);
        assert!(lines(vec![b'y'; 101], 100).await.unwrap()[0].contains("too long"));
    }

    #[tokio::test]
    async fn invalid_utf8_is_reported_per_line() {
        let data = b"good\n\xff\xfe bad\nalso good\n".to_vec();
        assert_eq!(
            lines(data, 100).await.unwrap(),
            ["1:good", "2:invalid utf-8", "3:also good"]
        );
    }

    #[tokio::test]
    async fn gzip_is_detected_by_magic_bytes() {
        let data = gzip(b"a\r\nb\n");
        assert_eq!(lines(data, 100).await.unwrap(), ["1:a", "2:b"]);
        // Concatenated members are one stream.
        let data = [gzip(b"a\n"), gzip(b"b\n")].concat();
        assert_eq!(lines(data, 100).await.unwrap(), ["1:a", "2:b"]);
    }

    #[tokio::test]
    async fn truncated_gzip_is_corrupt_not_transient() {
        let mut data = gzip(&b"some line\n".repeat(1000));
        data.truncate(data.len() / 2);
        match lines(data, 100).await {
            Err(ReadError::Corrupt { .. }) => {}
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_refused_early() {
        // 200 MB of zeros compress to about 200 KB.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b'0'; 1 << 20];
        for _ in 0..200 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 1 << 20);
        let limits = Limits {
            max_line_bytes: 1024,
            ..Limits::default()
        };
        match lines_with(bomb, limits).await {
            Err(ReadError::Limit {
                limit: LimitBroken::GzipRatio,
                ..
            }) => {}
            other => panic!("expected a GzipRatio refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn objects_over_the_size_limit_are_refused() {
        let data = b"a line\n".repeat(1000);
        let limits = Limits {
            max_object_bytes: 1000,
            ..Limits::default()
        };
        match lines_with(data.clone(), limits).await {
            Err(ReadError::Limit {
                limit: LimitBroken::ObjectTooLarge,
                ..
            }) => {}
            other => panic!("expected ObjectTooLarge, got {other:?}"),
        }
        let limits = Limits {
            max_object_bytes: 7000,
            ..Limits::default()
        };
        assert_eq!(lines_with(data, limits).await.unwrap().len(), 1000);
    }

    /// Lines of a body fed by `feed` (a duplex pipe's writing end, kept
    /// open until `feed` returns), with `idle` as the idle timeout.
    async fn lines_fed<F, Fut>(idle: Duration, feed: F) -> Result<Vec<String>, ReadError>
    where
        F: FnOnce(tokio::io::DuplexStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (reader, writer) = tokio::io::duplex(1024);
        let feeder = tokio::spawn(feed(writer));
        let limits = Limits {
            idle_timeout: idle,
            ..Limits::default()
        };
        let result = lines_with_reader(Box::new(reader), limits).await;
        feeder.abort();
        result
    }

    async fn lines_with_reader(
        body: Box<dyn AsyncRead + Send + Unpin>,
        limits: Limits,
    ) -> Result<Vec<String>, ReadError> {
        let mut reader = LineReader::new(body, limits, &object()).await?;
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await? {
            if let Line::Text { text, .. } = line {
                out.push(text.to_owned());
            }
        }
        Ok(out)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout_as_transient() {
        use tokio::io::AsyncWriteExt;
        let started = tokio::time::Instant::now();
        let result = lines_fed(Duration::from_secs(30), |mut w| async move {
            w.write_all(b"first\nsecond, cut sh").await.unwrap();
            // Then nothing, with the connection still open.
            std::future::pending::<()>().await;
        })
        .await;
        let waited = started.elapsed();
        match &result {
            Err(e @ ReadError::Transient { message, .. }) => {
                assert!(message.contains("FLEETWATCH_S3_IDLE_TIMEOUT"), "{message}");
                assert_eq!(e.class(), FailureClass::Transient);
            }
            other => panic!("expected a transient error, got {other:?}"),
        }
        assert!(
            (Duration::from_secs(30)..Duration::from_secs(31)).contains(&waited),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_silent_from_the_start_fails_too() {
        let result = lines_fed(Duration::from_secs(5), |w| async move {
            let _open = w;
            std::future::pending::<()>().await;
        })
        .await;
        assert!(
            matches!(result, Err(ReadError::Transient { .. })),
            "{result:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_steady_body_is_never_cut() {
        use tokio::io::AsyncWriteExt;
        // One line every 20 s for 10 minutes, with a 30 s idle timeout: the
        // object takes far longer than the timeout, yet never stalls.
        let lines = lines_fed(Duration::from_secs(30), |mut w| async move {
            for i in 0..30 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                w.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
            }
            // Dropping the writer ends the body.
        })
        .await
        .unwrap();
        assert_eq!(lines.len(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_of_the_reader_itself_do_not_count() {
        // The bytes are all there; the reader stops between lines for longer
        // than the idle timeout (as while it writes a batch to DynamoDB).
        let body = b"a\nb\nc\n".repeat(50_000);
        let limits = Limits {
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        };
        let (reader, mut writer) = tokio::io::duplex(4096);
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            writer.write_all(&body).await.unwrap();
        });
        let mut lines = LineReader::new(Box::new(reader), limits, &object())
            .await
            .unwrap();
        let mut n = 0;
        while lines.next_line().await.unwrap().is_some() {
            n += 1;
            if n % 10_000 == 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
        assert_eq!(n, 150_000);
        feeder.await.unwrap();
    }

    #[test]
    fn classes() {
        let missing = ReadError::Missing {
            bucket: "b".into(),
            key: "k".into(),
            code: "NoSuchKey".into(),
        };
        assert_eq!(missing.class(), FailureClass::Permanent);
        let throttled = ReadError::Transient {
            bucket: "b".into(),
            key: "k".into(),
            message: "SlowDown".into(),
            class: FailureClass::Throttled,
        };
        assert_eq!(throttled.class(), FailureClass::Throttled);
        let corrupt = ReadError::Corrupt {
            bucket: "b".into(),
            key: "k".into(),
            message: "bad gzip".into(),
        };
        assert!(!corrupt.class().is_retryable());
    }
}
