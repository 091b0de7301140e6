//! `fleetwatch bootstrap`: creates the resources from the command line's
//! names in the SDK environment's region and prints the shell exports that
//! configure a worker for them.

use crate::aws;
use crate::bootstrap::{self, BootstrapError};
use crate::config::BootstrapSettings;

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapCommandError {
    #[error("no AWS region: set AWS_REGION (e.g. us-east-1)")]
    NoRegion,
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
}

/// Runs the command, printing the exports to stdout.
pub async fn run(settings: &BootstrapSettings) -> Result<(), BootstrapCommandError> {
    let sdk = aws::load().await;
    let region = sdk
        .region()
        .map(ToString::to_string)
        .ok_or(BootstrapCommandError::NoRegion)?;
    let clients = aws::Clients::new(&sdk, settings.s3.path_style());
    let resources = bootstrap::run(&clients, &region, &settings.plan()).await?;
    print!("{}", resources.exports());
    Ok(())
}
