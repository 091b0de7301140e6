//! `fleetwatch simulate --upload s3://bucket/prefix`: puts the simulated
//! files straight into a bucket, as vehicles would, several at a time.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::{SimConfig, SimError, SimFormat, files};

/// Where to upload: `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    pub bucket: String,
    /// Empty, or ends with `/`.
    pub prefix: String,
}

impl std::str::FromStr for S3Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or("expected s3://bucket/prefix")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("expected s3://bucket/prefix (the bucket is missing)".into());
        }
        let prefix = match prefix {
            "" => String::new(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        };
        Ok(S3Target {
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Simulate(#[from] SimError),
    #[error("uploading s3://{bucket}/{key} failed: {message}")]
    Put {
        bucket: String,
        key: String,
        message: String,
    },
}

/// Files and readings uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadSummary {
    pub files: usize,
    pub readings: usize,
    pub bytes: u64,
}

/// Generates and uploads every file, `concurrency` uploads in flight.
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    cfg: &SimConfig,
    target: &S3Target,
    concurrency: usize,
) -> Result<UploadSummary, UploadError> {
    let content_type = match (cfg.gzip, cfg.format) {
        (true, _) => "application/gzip",
        (false, SimFormat::JsonLines) => "application/x-ndjson",
        (false, SimFormat::Csv) => "text/csv",
        (false, SimFormat::Text) => "text/plain",
    };
    stream::iter(files(cfg)?)
        .map(|file| async move {
            let key = format!("{}{}", target.prefix, file.key);
            let bytes = file.bytes.len() as u64;
            s3.put_object()
                .bucket(&target.bucket)
                .key(&key)
                .content_type(content_type)
                .body(ByteStream::from(file.bytes))
                .send()
                .await
                .map_err(|e| UploadError::Put {
                    bucket: target.bucket.clone(),
                    key,
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            Ok::<_, UploadError>(UploadSummary {
                files: 1,
                readings: file.readings,
                bytes,
            })
        })
        .buffer_unordered(concurrency.max(1))
        .try_fold(UploadSummary::default(), |total, one| async move {
            Ok(UploadSummary {
                files: total.files + one.files,
                readings: total.readings + one.readings,
                bytes: total.bytes + one.bytes,
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t: S3Target = "s3://fleet/incoming".parse().unwrap();
        assert_eq!(
            (t.bucket.as_str(), t.prefix.as_str()),
            ("fleet", "incoming/")
        );
        let t: S3Target = "s3://fleet".parse().unwrap();
        assert_eq!(t.prefix, "");
        let t: S3Target = "s3://fleet/a/b/".parse().unwrap();
        assert_eq!(t.prefix, "a/b/");
        assert!("fleet/x".parse::<S3Target>().is_err());
        assert!("s3:///x".parse::<S3Target>().is_err());
    }
}
