//! The empty-value rule for settings, for every setting of every
//! subcommand (read from the command definition itself, so a setting added
//! later is covered): an empty `FLEETWATCH_*` variable is the same as an
//! unset one, an empty required one is refused naming it, and an empty
//! value typed on the command line is refused by the setting's parser.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use clap::CommandFactory;
use common::process::BIN;
use fleetwatch::config::Cli;

/// Arguments that make each subcommand's required settings present
/// without environment variables.
fn required_args(subcommand: &str, dir: &std::path::Path) -> Vec<String> {
    match subcommand {
        "worker" => vec!["--queue-url".into(), "http://localhost/q".into()],
        "simulate" => vec!["--out".into(), dir.display().to_string()],
        "history" => vec!["VHC001".into()],
        "status" => vec!["--queue-url".into(), "http://localhost/q".into()],
        "alarms" | "rules" => vec!["list".into()],
        _ => vec![],
    }
}

/// Every subcommand with the environment variables of its settings
/// (global ones included).
fn settings() -> BTreeMap<String, Vec<(String, String)>> {
    let cli = Cli::command();
    let global: Vec<(String, String)> = env_args(&cli);
    cli.get_subcommands()
        .map(|sub| {
            let mut vars = env_args(sub);
            vars.extend(global.iter().cloned());
            (sub.get_name().to_owned(), vars)
        })
        .collect()
}

/// (long flag, environment variable) of each argument that has both.
fn env_args(command: &clap::Command) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter_map(|a| Some((a.get_long()?.to_owned(), a.get_env()?.to_str()?.to_owned())))
        .collect()
}

/// Runs `fleetwatch <args> --print-settings` with every `FLEETWATCH_*`
/// variable of the caller removed, then `env` set.
fn run(args: &[String], env: &[(String, String)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).arg("--print-settings");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLEETWATCH_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.output().expect("run fleetwatch")
}

#[test]
fn every_empty_variable_means_unset() {
    let dir = std::env::temp_dir().join(format!("fleetwatch-settings-{}", std::process::id()));
    let all = settings();
    assert!(
        all["worker"].len() >= 25,
        "the worker's settings were found: {:?}",
        all["worker"]
    );
    for (subcommand, vars) in &all {
        let mut args = vec![subcommand.clone()];
        args.extend(required_args(subcommand, &dir));
        let unset = run(&args, &[]);
        assert!(
            unset.status.success(),
            "{subcommand} with nothing set: {}",
            String::from_utf8_lossy(&unset.stderr)
        );
        let empty: Vec<(String, String)> = vars
            .iter()
            .map(|(_, name)| (name.clone(), String::new()))
            .collect();
        let with_empty = run(&args, &empty);
        assert!(
            with_empty.status.success(),
            "{subcommand} with every variable empty: {}",
            String::from_utf8_lossy(&with_empty.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&with_empty.stdout),
            String::from_utf8_lossy(&unset.stdout),
            "{subcommand}: empty variables must give exactly the defaults"
        );
    }
}

#[test]
fn an_empty_required_variable_is_refused_naming_it() {
    let output = run(
        &["worker".to_owned()],
        &[("FLEETWATCH_QUEUE_URL".to_owned(), String::new())],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FLEETWATCH_QUEUE_URL is empty"), "{stderr}");
}

#[test]
fn an_empty_value_on_the_command_line_is_refused_naming_the_setting() {
    let dir = std::env::temp_dir().join(format!("fleetwatch-settings-{}", std::process::id()));
    let cli = Cli::command();
    let mut checked = 0;
    for sub in cli.get_subcommands() {
        let name = sub.get_name().to_owned();
        let takes_value = |a: &&clap::Arg| {
            a.get_env().is_some() && a.get_action().takes_values() && a.get_long().is_some()
        };
        for arg in sub.get_arguments().filter(takes_value) {
            let long = arg.get_long().unwrap_or_default();
            let mut args = vec![name.clone()];
            args.extend(required_args(&name, &dir));
            args.extend([format!("--{long}"), String::new()]);
            let output = run(&args, &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{name} --{long} \"\" was accepted: {}",
                String::from_utf8_lossy(&output.stdout)
            );
            assert!(stderr.contains(&format!("--{long}")), "{stderr}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} settings checked");
}
