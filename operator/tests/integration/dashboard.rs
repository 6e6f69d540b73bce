//! The shipped Grafana dashboard (`deploy/globalingress/files/dashboard.json`), checked against a
//! real Prometheus: it scrapes the operator every second through a failover and a failback (Knot)
//! while a Route 53 zone behind a throttling proxy publishes, and then every query of every panel
//! must return data. A misspelt metric, label or function fails here, not on a platform team's
//! screen.

use std::time::Duration;

use kube::api::PostParams;
use serde_json::json;

use crate::failover::{WAIT, external, global_ingress, health_check, set, setup, until_answer};
use crate::support::dataplane::DataPlane;
use crate::support::operator::eventually;
use crate::support::prometheus::Prometheus;
use crate::support::proxy::FaultProxy;
use crate::support::{self};

/// Every (panel title, query) of the dashboard, with Grafana's `$__rate_interval` as 1m.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/globalingress/files/dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                expr.replace("$__rate_interval", "1m"),
            ));
        }
    }
    out
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_prometheus_that_scraped_a_failover() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let s = setup("dashboard").await;
    let r53 = support::route53_zone(Some((&s.client, &s.ns)), "dashboard").await;
    let proxy = FaultProxy::start();
    proxy.configure(json!({"throttle": 0.3, "seed": 11})).await;
    let planes = DataPlane::start_many(&["127.0.0.40", "127.0.0.41"]).await;
    let (a, b) = (&planes[0], &planes[1]);
    let op = s.operator(&["--aws-endpoint-url", &proxy.url]);
    let admin = op.admin.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&[&admin]).await;

    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                &s.ns,
                "shop",
                &s.zone,
                &s.host,
                json!([external("a", &a.ip()), external("b", &b.ip())]),
                health_check(a.port(), json!({ "failbackAfter": "2s" })),
            ),
        )
        .await
        .unwrap();
    s.api
        .create(
            &PostParams::default(),
            &global_ingress(
                &s.ns,
                "web",
                &r53.name,
                &format!("web.{}", r53.domain),
                json!([external("a", "192.0.2.40"), external("b", "198.51.100.40")]),
                json!({ "protocol": "None" }),
            ),
        )
        .await
        .unwrap();
    let both = set(&[&a.ip(), &b.ip()]);
    until_answer(&s.host, &both, WAIT).await;
    a.stop().await;
    until_answer(&s.host, &set(&[&b.ip()]), WAIT).await;
    a.restart().await;
    until_answer(&s.host, &both, WAIT).await;

    // Scraped after the failback: its samples are in Prometheus.
    eventually("the failback scraped", WAIT, || async {
        let found = prometheus
            .query("globalingress_failover_duration_seconds_count{kind=\"Failback\"} > 0")
            .await;
        (!found.is_empty()).then_some(())
    })
    .await;
    // Rates need two samples of each series after the last change: a few more scrapes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut empty = Vec::new();
    for (title, expr) in &queries {
        let result = prometheus.query(expr).await;
        println!("{:>3} series  {title}: {expr}", result.len());
        if result.is_empty() {
            empty.push(format!("{title}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "dashboard queries without data (Prometheus in {}):\n{}",
        prometheus.dir().display(),
        empty.join("\n")
    );
}
