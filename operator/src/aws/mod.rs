//! AWS: one SDK configuration for every service client, pointed at AWS or at an emulator, with
//! every HTTP attempt spending from a shared [`budget::Budget`]; clients per spoke account and
//! region (the hub's credentials or an assumed role) in [`accounts`].

pub mod accounts;
pub mod acm;
pub mod budget;
pub mod elb;
pub mod errors;
pub mod privatelink;
pub mod route53_health;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// How the SDK reaches AWS.
#[derive(Debug, Clone, Default)]
pub struct SdkSettings {
    /// Region for regional services (Route 53 is global; its calls are signed for us-east-1).
    pub region: Option<String>,
    /// Override of every service endpoint, for an emulator (e.g. `http://127.0.0.1:5000`).
    pub endpoint_url: Option<String>,
    /// Static credentials instead of the default provider chain (an emulator without IAM
    /// enforcement accepts any).
    pub static_credentials: Option<(String, String)>,
    /// Attempts per call, including the first, for throttling, `PriorRequestNotComplete` and 5xx.
    pub max_attempts: u32,
}

impl SdkSettings {
    /// Settings for an emulator at `endpoint_url` with dummy credentials in us-east-1.
    pub fn emulator(endpoint_url: impl Into<String>) -> Self {
        Self {
            region: Some("us-east-1".to_owned()),
            endpoint_url: Some(endpoint_url.into()),
            static_credentials: Some(("testing".to_owned(), "testing".to_owned())),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// The SDK's standard retry mode (exponential backoff with full jitter) with a few more attempts
/// than its default of 3: Route 53 throttles a whole account, and a failed change batch costs more
/// than a late one.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The SDK configuration and the budget every client built from it spends.
#[derive(Debug, Clone)]
pub struct Aws {
    pub sdk: SdkConfig,
    pub budget: budget::Budget,
}

impl Aws {
    pub async fn new(settings: &SdkSettings, budget: budget::Budget) -> Self {
        let sdk = sdk_config_with(settings, Some(&budget)).await;
        Self { sdk, budget }
    }

    /// Clients per (account, region) for spokes, built from the hub's configuration;
    /// `replica` names this replica in role session names.
    pub fn accounts(&self, replica: &str) -> accounts::Accounts {
        accounts::Accounts::new(self.sdk.clone(), self.budget.clone(), replica)
    }

    /// A Route 53 client under the budget.
    pub fn route53(&self) -> aws_sdk_route53::Client {
        let config = aws_sdk_route53::config::Builder::from(&self.sdk)
            .interceptor(self.budget.interceptor())
            .build();
        aws_sdk_route53::Client::from_conf(config)
    }
}

/// Builds an SDK configuration without a budget (tests and tools).
pub async fn sdk_config(settings: &SdkSettings) -> SdkConfig {
    sdk_config_with(settings, None).await
}

async fn sdk_config_with(settings: &SdkSettings, budget: Option<&budget::Budget>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)));
    loader = match budget {
        // The budget times each attempt itself, from the moment its token was taken (the SDK's
        // attempt timeout would count the wait for the token too); the number of attempts
        // bounds the whole call.
        // The SDK's stalled-stream protection would count the wait for the token as a stalled
        // upload (the body is not read until the token is taken) and fail the attempt after its
        // 5 s grace period as "timed out": uploads are unprotected here, downloads keep it.
        Some(budget) => loader
            .stalled_stream_protection(
                aws_config::stalled_stream_protection::StalledStreamProtectionConfig::enabled()
                    .upload_enabled(false)
                    .build(),
            )
            .http_client(budget.http_client_for(budget::HUB_ACCOUNT))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .build(),
            ),
        None => loader.timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        ),
    };
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some((key, secret)) = &settings.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            key.clone(),
            secret.clone(),
            None,
            None,
            "globalingress-static",
        ));
    }
    loader.load().await
}
