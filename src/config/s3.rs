//! S3 addressing (`FLEETWATCH_S3_PATH_STYLE`), for every subcommand that
//! reads or writes S3.

use clap::Args;

/// Path-style or virtual-hosted S3 addressing.
#[derive(Debug, Clone, Args)]
pub struct S3AddressingSettings {
    /// Use path-style S3 addressing. Defaults to on when an endpoint override
    /// (AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3) is set, as emulators need it.
    #[arg(long, env = "FLEETWATCH_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
}

impl S3AddressingSettings {
    /// Whether the S3 client uses path-style addressing (see [`s3_path_style`]).
    pub fn path_style(&self) -> bool {
        s3_path_style(self.s3_path_style)
    }
}

/// Whether S3 should use path-style addressing: the explicit setting, or on
/// when the S3 endpoint is overridden (LocalStack and moto need it).
pub fn s3_path_style(explicit: Option<bool>) -> bool {
    explicit.unwrap_or_else(|| {
        ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
    })
}
