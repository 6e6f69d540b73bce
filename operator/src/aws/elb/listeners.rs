//! The ELBv2 listener calls: the forwarding listener (HTTP, TCP, or HTTPS and TLS with their
//! certificate), an ALB's redirecting HTTP listener with TLS, and deletion of listeners nothing
//! wants. Every create carries its tags.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2 as elbv2;
use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
use elbv2::types::{Action, ActionTypeEnum, ProtocolEnum};

use super::sdk::{protocol, tags_of};
use crate::aws::errors;
use crate::model::load_balancer::SeenListener;

pub async fn listeners(client: &elbv2::Client, lb: &str) -> Result<Vec<SeenListener>, String> {
    let out = client
        .describe_listeners()
        .load_balancer_arn(lb)
        .send()
        .await
        .map_err(|e| errors::describe("DescribeListeners", &e))?;
    Ok(out
        .listeners()
        .iter()
        .map(|l| SeenListener {
            arn: l.listener_arn().unwrap_or_default().to_owned(),
            port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
            protocol: l
                .protocol()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            target_group: l
                .default_actions()
                .iter()
                .find_map(|a| a.target_group_arn().map(str::to_owned)),
            certificate: l
                .certificates()
                .iter()
                .find_map(|c| c.certificate_arn().map(str::to_owned)),
            redirect_to: l
                .default_actions()
                .iter()
                .find_map(|a| a.redirect_config().and_then(|r| r.port()))
                .and_then(|p| p.parse().ok()),
        })
        .collect())
}

fn forward(tg: &str) -> Result<Action, String> {
    Ok(Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build())
}

fn certificates(arn: Option<&str>) -> Option<Vec<elbv2::types::Certificate>> {
    arn.map(|a| {
        vec![
            elbv2::types::Certificate::builder()
                .certificate_arn(a)
                .build(),
        ]
    })
}

/// ELBv2's TLS policy for HTTPS and TLS listeners: TLS 1.2 and 1.3 only.
const SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

/// Creates the forwarding listener; `certificate` for HTTPS and TLS.
pub async fn create_listener(
    client: &elbv2::Client,
    lb: &str,
    wanted: &crate::model::load_balancer::WantedListener,
    tg: &str,
    certificate: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<SeenListener, String> {
    let out = client
        .create_listener()
        .load_balancer_arn(lb)
        .protocol(protocol(wanted.protocol))
        .port(i32::from(wanted.port))
        .default_actions(forward(tg)?)
        .set_certificates(certificates(certificate))
        .set_ssl_policy(certificate.map(|_| SSL_POLICY.to_owned()))
        .set_tags(Some(tags_of(tags)?))
        .send()
        .await
        .map_err(|e| errors::describe("CreateListener", &e))?;
    let arn = out
        .listeners()
        .first()
        .and_then(|l| l.listener_arn())
        .unwrap_or_default()
        .to_owned();
    Ok(SeenListener {
        arn,
        port: wanted.port,
        protocol: wanted.protocol.as_str().to_owned(),
        target_group: Some(tg.to_owned()),
        certificate: certificate.map(str::to_owned),
        redirect_to: None,
    })
}

pub async fn modify_listener(
    client: &elbv2::Client,
    arn: &str,
    wanted: &crate::model::load_balancer::WantedListener,
    tg: &str,
    certificate: Option<&str>,
) -> Result<(), String> {
    client
        .modify_listener()
        .listener_arn(arn)
        .protocol(protocol(wanted.protocol))
        .port(i32::from(wanted.port))
        .default_actions(forward(tg)?)
        .set_certificates(certificates(certificate))
        .set_ssl_policy(certificate.map(|_| SSL_POLICY.to_owned()))
        .send()
        .await
        .map_err(|e| errors::describe("ModifyListener", &e))?;
    Ok(())
}

fn redirect(to_port: u16) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Redirect)
        .redirect_config(
            elbv2::types::RedirectActionConfig::builder()
                .protocol("HTTPS")
                .port(to_port.to_string())
                .status_code(elbv2::types::RedirectActionStatusCodeEnum::Http301)
                .build(),
        )
        .build()
}

/// The HTTP listener that redirects to HTTPS (`existing`: modify that listener instead).
pub async fn put_redirect(
    client: &elbv2::Client,
    lb: &str,
    wanted: &crate::model::load_balancer::WantedRedirect,
    existing: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<SeenListener, String> {
    let arn = match existing {
        Some(arn) => {
            client
                .modify_listener()
                .listener_arn(arn)
                .protocol(ProtocolEnum::Http)
                .port(i32::from(wanted.port))
                .default_actions(redirect(wanted.to_port))
                .send()
                .await
                .map_err(|e| errors::describe("ModifyListener", &e))?;
            arn.to_owned()
        }
        None => client
            .create_listener()
            .load_balancer_arn(lb)
            .protocol(ProtocolEnum::Http)
            .port(i32::from(wanted.port))
            .default_actions(redirect(wanted.to_port))
            .set_tags(Some(tags_of(tags)?))
            .send()
            .await
            .map_err(|e| errors::describe("CreateListener", &e))?
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_owned(),
    };
    Ok(SeenListener {
        arn,
        port: wanted.port,
        protocol: "HTTP".to_owned(),
        target_group: None,
        certificate: None,
        redirect_to: Some(wanted.to_port),
    })
}

pub async fn delete_listener(client: &elbv2::Client, arn: &str) -> Result<(), String> {
    match client.delete_listener().listener_arn(arn).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ListenerNotFound") => Ok(()),
        Err(e) => Err(errors::describe("DeleteListener", &e)),
    }
}
