//! A moto of a test's own with IAM enforcement on (`tests/env/iam_setup.py`): the tests' calls
//! sign with an admin's keys, the operator's with a user holding only
//! `terraform/policies/hub.json`, and in the spoke accounts it assumes `globalingress-spoke`, which
//! holds only `spoke.json`. A permission those documents lack is AccessDenied.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::env;
use super::proxy::http;

/// The spoke role of `account` (what the operator assumes there).
pub fn spoke_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/globalingress-spoke")
}

/// The role of `account` the tests assume to build VPCs there (everything allowed).
pub fn admin_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/globalingress-tests-admin")
}

pub struct EnforcingMoto {
    pub url: String,
    pub admin: (String, String),
    pub operator: (String, String),
    _child: Child,
    dir: PathBuf,
    python: PathBuf,
    setup: PathBuf,
}

impl EnforcingMoto {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(super::unique_name("moto-iam"));
        std::fs::create_dir_all(&dir).expect("moto dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let env_dir = std::path::Path::new(&env().dir);
        let vars = std::fs::read_to_string(env_dir.join("env")).expect("env file");
        let var = |key: &str| {
            vars.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing from the env file"))
                .to_owned()
        };
        let log = std::fs::File::create(dir.join("moto.log")).expect("log");
        let child = Command::new(var("GI_MOTO_SERVER"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ACM_VALIDATION_WAIT", "5")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while http("GET", &format!("{url}/moto-api/data.json"), "")
            .await
            .0
            != 200
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto not up after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let keys = dir.join("keys.env");
        let server = PathBuf::from(var("GI_MOTO_SERVER"));
        let python = server.with_file_name("python");
        let out = Command::new(&python)
            .arg(var("GI_IAM_SETUP"))
            .arg(&url)
            .arg(&keys)
            .output()
            .await
            .expect("run iam_setup.py");
        assert!(
            out.status.success(),
            "iam_setup.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&keys).expect("keys");
        let keys: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let pair = |who: &str| {
            (
                keys[format!("GI_AWS_{who}_ACCESS_KEY_ID").as_str()].to_owned(),
                keys[format!("GI_AWS_{who}_SECRET_ACCESS_KEY").as_str()].to_owned(),
            )
        };
        Self {
            url,
            admin: pair("ADMIN"),
            operator: pair("OPERATOR"),
            _child: child,
            dir,
            python,
            setup: PathBuf::from(var("GI_IAM_SETUP")),
        }
    }

    /// Puts `spoke.json` on `account`'s spoke role, without the action `without` if given.
    pub async fn set_spoke_policy(&self, account: &str, without: Option<&str>) {
        let mut command = Command::new(&self.python);
        command
            .arg(&self.setup)
            .args(["spoke-policy", &self.url])
            .arg(self.dir.join("keys.env"))
            .arg(account);
        if let Some(action) = without {
            command.arg(action);
        }
        let out = command.output().await.expect("run iam_setup.py");
        assert!(
            out.status.success(),
            "iam_setup.py spoke-policy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SDK configuration in `region` with the admin's keys, or a role assumed with them.
    pub async fn admin_config(&self, region: &str, role: Option<&str>) -> aws_config::SdkConfig {
        let settings = globalingress::aws::SdkSettings {
            region: Some(region.to_owned()),
            endpoint_url: Some(self.url.clone()),
            static_credentials: Some(self.admin.clone()),
            max_attempts: 3,
        };
        let admin = globalingress::aws::sdk_config(&settings).await;
        match role {
            Some(role) => super::network::assumed(&admin, role).await,
            None => admin,
        }
    }

    /// Where its log is.
    pub fn log(&self) -> PathBuf {
        self.dir.join("moto.log")
    }
}
