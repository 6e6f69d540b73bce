//! Servers of a test's own, started with `tests/env/env.sh start DIR NAME`: a kube-apiserver
//! (any cluster name) or Knot (`knot`), in `DIR/NAME`. Stopping and starting one keeps its
//! state (port, certificates, tokens, etcd data; Knot's zone and TSIG key), so a test can restart
//! a server under the operator and check it reconnects and carries on, which the shared
//! environment's servers must never be put through.
//!
//! Synchronous (a cluster takes seconds to start and to stop cleanly): from async tests, call
//! it inside `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running (or stopped) component; stopped, its data kept, when dropped.
#[derive(Debug)]
pub struct Component {
    dir: PathBuf,
    name: String,
    env_file: PathBuf,
    vars: HashMap<String, String>,
}

impl Component {
    /// Starts `name` in `dir/name`, reusing what that holds from before, and waits until it
    /// answers. Panics (the script's log is on stderr) when it does not come up.
    pub fn start(dir: &Path, name: &str) -> Component {
        let env_file = env_sh("start", dir, name, &[]).unwrap_or_else(|| {
            panic!(
                "env.sh start {} {name} printed no READY line",
                dir.display()
            )
        });
        let vars = load(&env_file);
        Component {
            dir: dir.to_owned(),
            name: name.to_owned(),
            env_file,
            vars,
        }
    }

    /// Stops it (SIGTERM; KILL after 20 s) and waits until it is gone; its data stays.
    pub fn stop(&self) {
        env_sh("stop", &self.dir, &self.name, &[]);
    }

    /// Starts it again after [`stop`](Self::stop), with the same data, and waits until it
    /// answers.
    pub fn start_again(&self) {
        env_sh("start", &self.dir, &self.name, &[]);
        self.check_same();
    }

    /// A value of its env file: for a cluster `GI_KUBECONFIG`, `GI_URL`,
    /// `GI_UNPRIVILEGED_KUBECONFIG`; for Knot `GI_DNS_SERVER`, `GI_DNS_ZONE`, `GI_TSIG_KEY_NAME`,
    /// `GI_TSIG_ALGORITHM`, `GI_TSIG_SECRET_FILE`, `GI_KNOT_LOG`.
    pub fn get(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "{} has no {key} (keys: {:?})",
                self.env_file.display(),
                self.vars.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Clients hold the addresses and keys read at the first start: a restart must not move them.
    fn check_same(&self) {
        let now = load(&self.env_file);
        assert_eq!(
            now,
            self.vars,
            "{} changed across a restart of {}",
            self.env_file.display(),
            self.name
        );
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        // No panic here: a drop while a failed test unwinds would abort the whole binary.
        let status = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .arg(&self.name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            eprintln!(
                "env.sh stop {} {} failed: {status:?}",
                self.dir.display(),
                self.name
            );
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/env/env.sh")
}

/// Runs `env.sh COMMAND DIR NAME EXTRA...`, panics when it fails, returns the env file of its
/// `READY <file>` line, if any.
fn env_sh(command: &str, dir: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
    let output = Command::new("bash")
        .arg(script())
        .arg(command)
        .arg(dir)
        .arg(name)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "env.sh {command} {} {name} failed ({}); its log is above. stdout: {stdout}",
        dir.display(),
        output.status
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("READY "))
        .map(|file| PathBuf::from(file.trim()))
}

/// A `KEY=VALUE` file (comments and blank lines skipped).
fn load(file: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A directory for one test's private components, inside the environment's (so `env.sh down`
/// of the environment stops them too, whatever happened to the test).
pub fn private_dir(prefix: &str) -> PathBuf {
    let dir = super::env()
        .dir
        .join("private")
        .join(super::unique_name(prefix));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
