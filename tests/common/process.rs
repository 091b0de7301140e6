//! The real `fleetwatch` binary as a child process: `bootstrap` against the
//! emulator, and a worker process with its metrics endpoint, stopped with
//! SIGTERM (graceful) or SIGKILL (a crash).

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::{Moto, Stack, free_port, wait_for};

pub const BIN: &str = env!("CARGO_BIN_EXE_fleetwatch");
const WAIT: Duration = Duration::from_secs(90);

/// What `fleetwatch bootstrap` printed.
pub struct Bootstrapped {
    /// The `export K=V` lines.
    pub exports: Vec<(String, String)>,
    pub dead_letter_queue_url: String,
    pub stdout: String,
}

impl Bootstrapped {
    pub fn get(&self, key: &str) -> String {
        self.exports
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} missing from bootstrap's exports:\n{}", self.stdout))
    }

    /// The stack as bootstrap created it, with the test's alert inbox.
    pub async fn stack(&self, moto: &Moto) -> Stack {
        let resources = fleetwatch::bootstrap::Resources {
            bucket: self.get("FLEETWATCH_BUCKET"),
            queue_url: self.get("FLEETWATCH_QUEUE_URL"),
            dead_letter_queue_url: self.dead_letter_queue_url.clone(),
            table: self.get("FLEETWATCH_TABLE"),
            alarm_table: self.get("FLEETWATCH_ALARM_TABLE"),
            topic_arn: self.get("FLEETWATCH_ALERT_TOPIC_ARN"),
        };
        Stack::attach(moto.clients().await, resources).await
    }
}

/// Runs `fleetwatch bootstrap` against the emulator.
pub fn bootstrap(moto: &Moto) -> Bootstrapped {
    bootstrap_with(moto, &[])
}

/// Runs `fleetwatch bootstrap` with extra settings (e.g.
/// `FLEETWATCH_MAX_RECEIVE_COUNT`).
pub fn bootstrap_with(moto: &Moto, extra: &[(&str, &str)]) -> Bootstrapped {
    let output = Command::new(BIN)
        .arg("bootstrap")
        .envs(moto.env())
        .envs(extra.iter().copied())
        .output()
        .expect("run bootstrap");
    assert!(
        output.status.success(),
        "bootstrap failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let exports = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let dead_letter_queue_url = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# dead-letter queue: "))
        .unwrap_or_else(|| panic!("no dead-letter queue in:\n{stdout}"))
        .trim()
        .to_owned();
    Bootstrapped {
        exports,
        dead_letter_queue_url,
        stdout,
    }
}

/// A worker process, killed on drop if still running.
pub struct WorkerProcess {
    child: Child,
    pub metrics_url: String,
}

impl WorkerProcess {
    /// Starts `fleetwatch worker` against the emulator with bootstrap's
    /// settings; `extra` comes last and overrides (e.g. `AWS_ENDPOINT_URL`
    /// to go through a proxy).
    pub fn start(moto: &Moto, setup: &Bootstrapped, extra: &[(&str, &str)]) -> WorkerProcess {
        let port = free_port();
        let child = Command::new(BIN)
            .arg("worker")
            .envs(moto.env())
            .envs(setup.exports.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FLEETWATCH_METRICS_ADDR", format!("127.0.0.1:{port}"))
            .env("FLEETWATCH_LOG_FORMAT", "json")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the worker");
        WorkerProcess {
            child,
            metrics_url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.metrics_url);
        wait_for("/readyz", WAIT, || async {
            fleetwatch::health::probe(&url, Duration::from_secs(2))
                .await
                .ok()
        })
        .await;
    }

    /// The worker's /metrics text, `None` while it is not serving.
    pub async fn metrics(&self) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let authority = self.metrics_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        stream
            .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        (text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200")).then_some(text)
    }

    /// SIGKILL: no grace, no cleanup, whatever it was doing.
    pub fn kill(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the worker died on its own"
        );
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_for("the worker to exit", Duration::from_secs(40), || {
            let status = self.child.try_wait().unwrap();
            async move { status }
        })
        .await
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
