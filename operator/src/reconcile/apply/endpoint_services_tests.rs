//! The endpoint-service deployer against the in-memory port: the connection handling moto
//! cannot serve (DescribeVpcEndpointConnections, Accept/RejectVpcEndpointConnections), and
//! the order of removal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::aws::privatelink::fake::Fake;
use crate::model::privatelink::{endpoint_tags, service_tags};

const WHO: (&str, &str) = ("hub", "ns/app");

fn wanted(consumers: Vec<WantedEndpoint>) -> WantedEndpointService {
    WantedEndpointService {
        target: "eu".into(),
        spoke: "spoke".into(),
        load_balancer: "lb".into(),
        acceptance_required: true,
        allowed_principals: BTreeSet::from(["arn:aws:iam::444455556666:root".to_owned()]),
        private_dns_name: Some("api.example.com".into()),
        consumers,
        tags: service_tags("hub", "ns/app", "eu"),
    }
}

fn consumer(vpc: &str) -> WantedEndpoint {
    WantedEndpoint {
        vpc_id: vpc.into(),
        subnets: BTreeSet::from(["subnet-1".to_owned()]),
        security_groups: BTreeSet::new(),
        account_id: None,
        role_arn: None,
        tags: endpoint_tags("hub", "ns/app", "eu", vpc),
    }
}

async fn run(
    fake: &Arc<Fake>,
    w: &WantedEndpointService,
    accept: &[&str],
    reject: &[&str],
) -> (ServiceReport, Option<Rrset>) {
    let api: Arc<dyn PrivateLinkApi> = fake.clone();
    let consumers: Vec<(WantedEndpoint, Arc<dyn PrivateLinkApi>)> = w
        .consumers
        .iter()
        .map(|c| (c.clone(), api.clone()))
        .collect();
    let accept: BTreeSet<String> = accept.iter().map(|s| (*s).to_owned()).collect();
    let reject: BTreeSet<String> = reject.iter().map(|s| (*s).to_owned()).collect();
    deploy_service(
        api.as_ref(),
        WHO,
        w,
        "arn:lb",
        (&accept, &reject),
        &consumers,
        &mut Vec::new(),
    )
    .await
}

#[tokio::test]
async fn our_own_endpoint_is_accepted_others_wait_for_the_annotation() {
    let fake = Arc::new(Fake::default());
    let w = wanted(vec![consumer("vpc-hub")]);
    let (report, record) = run(&fake, &w, &[], &[]).await;
    assert_eq!(report.error, None);
    let service = report.service_id.clone().unwrap_or_default();
    // The endpoint the hub made itself was pending acceptance and is accepted at once.
    assert_eq!(report.accepted, 1, "{report:?}");
    assert_eq!(report.endpoints[0].state.as_deref(), Some("available"));
    assert!(report.pending.is_empty());
    // The verification record goes to the claim.
    let record = record.unwrap_or_else(|| panic!("verification record"));
    assert_eq!(record.name, "_verify.api.example.com");
    assert_eq!(
        fake.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .principals[&service],
        vec!["arn:aws:iam::444455556666:root".to_owned()]
    );

    // Someone else asks: pending, listed, until the annotation accepts or rejects it.
    fake.request(&service, "vpce-theirs");
    fake.request(&service, "vpce-other");
    let (report, _) = run(&fake, &w, &[], &[]).await;
    assert_eq!(
        report.pending,
        vec!["vpce-theirs".to_owned(), "vpce-other".to_owned()]
    );
    // An Event says so once (not again while the status already lists them).
    let services = EndpointServices {
        reports: vec![report.clone()],
        records: Vec::new(),
    };
    let mut notes = Vec::new();
    pending_notes("app", &[], &services, &mut notes);
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .message
            .contains("globalingress.io/accept-endpoint=vpce-theirs"),
        "{}",
        notes[0].message
    );
    let listed: crate::api::global_ingress::TargetStatus =
        serde_json::from_value(serde_json::json!({
            "name": "eu", "health": "Healthy",
            "privateLink": { "pendingConnections": ["vpce-theirs", "vpce-other"] }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut again = Vec::new();
    pending_notes("app", &[listed], &services, &mut again);
    assert!(again.is_empty());
    let (report, _) = run(&fake, &w, &["vpce-theirs"], &["vpce-other"]).await;
    assert!(report.pending.is_empty(), "{report:?}");
    assert_eq!((report.accepted, report.rejected), (2, 1));
    // In sync: nothing is created, modified, accepted or rejected again.
    let before = fake.calls().len();
    let (_, _) = run(&fake, &w, &["vpce-theirs"], &["vpce-other"]).await;
    let writes: Vec<String> = fake.calls()[before..]
        .iter()
        .filter(|c| {
            !matches!(
                c.as_str(),
                "services" | "permissions" | "endpoints" | "connections"
            )
        })
        .cloned()
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn principals_and_acceptance_change_in_place() {
    let fake = Arc::new(Fake::default());
    let mut w = wanted(Vec::new());
    run(&fake, &w, &[], &[]).await;
    w.allowed_principals = BTreeSet::from(["arn:aws:iam::777788889999:root".to_owned()]);
    w.acceptance_required = false;
    let (report, _) = run(&fake, &w, &[], &[]).await;
    let service = report.service_id.unwrap_or_default();
    let state = fake.state.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(state.services.len(), 1, "changed in place, not replaced");
    assert!(!state.services[&service].acceptance_required);
    assert_eq!(
        state.principals[&service],
        vec!["arn:aws:iam::777788889999:root".to_owned()]
    );
}

#[tokio::test]
async fn removal_deletes_endpoints_rejects_connections_then_deletes_the_service() {
    let fake = Arc::new(Fake::default());
    let w = wanted(vec![consumer("vpc-hub")]);
    let (report, _) = run(&fake, &w, &[], &[]).await;
    let service = report.service_id.unwrap_or_default();
    fake.request(&service, "vpce-theirs");
    // A foreign service is never touched.
    fake.state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .services
        .insert(
            "vpce-svc-foreign".into(),
            SeenEndpointService {
                id: "vpce-svc-foreign".into(),
                tags: BTreeMap::from([("team".to_owned(), "x".to_owned())]),
                ..SeenEndpointService::default()
            },
        );
    let api: Arc<dyn PrivateLinkApi> = fake.clone();
    let before = fake.calls().len();
    remove(&api, WHO, &BTreeSet::new(), &[], false, &mut Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let writes: Vec<String> = fake.calls()[before..]
        .iter()
        .filter(|c| matches!(c.as_str(), "delete_endpoint" | "reject" | "delete_service"))
        .cloned()
        .collect();
    assert_eq!(writes, vec!["delete_endpoint", "reject", "delete_service"]);
    let state = fake.state.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        state.services.keys().collect::<Vec<_>>(),
        vec!["vpce-svc-foreign"]
    );
    assert!(state.endpoints.is_empty());
}

#[tokio::test]
async fn retain_re_tags_service_and_endpoints_and_deletes_nothing() {
    let fake = Arc::new(Fake::default());
    let w = wanted(vec![consumer("vpc-hub")]);
    run(&fake, &w, &[], &[]).await;
    let api: Arc<dyn PrivateLinkApi> = fake.clone();
    remove(&api, WHO, &BTreeSet::new(), &[], true, &mut Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let state = fake.state.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(state.services.len(), 1);
    assert_eq!(state.endpoints.len(), 1);
    let owners: Vec<&str> = state
        .services
        .values()
        .map(|s| &s.tags)
        .chain(state.endpoints.values().map(|e| &e.tags))
        .filter_map(|t| {
            t.get(crate::model::ownership::TAG_OWNER)
                .map(String::as_str)
        })
        .collect();
    assert_eq!(owners, vec!["hub/retained", "hub/retained"]);
    assert!(
        !state
            .calls
            .iter()
            .any(|c| c == "reject" || c.starts_with("delete"))
    );
}
