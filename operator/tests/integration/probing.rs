//! The prober against real servers: HTTPS with certificate validation on and off (the hub's
//! kube-apiserver, whose certificate no public root signs), and host names resolved through the
//! configured DNS server (Knot), following a CNAME to a loopback data plane.

use std::time::Duration;

use globalingress::dns::rfc2136::{Update, UpdateClient, record};
use globalingress::dns::{Name, RData};
use globalingress::health::probe::{ProbeSpec, Prober, Protocol, Resolver};

use crate::support::dataplane::DataPlane;
use crate::support::{env, unique_name};

fn spec(address: &str, port: u16, protocol: Protocol, host: &str) -> ProbeSpec {
    ProbeSpec {
        address: address.to_owned(),
        port,
        protocol,
        host: host.to_owned(),
        path: "/livez".to_owned(),
        // Anonymous requests may be refused: the handshake and the HTTP exchange are the point.
        expected_status: vec![200, 401, 403],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        healthy_threshold: 1,
        unhealthy_threshold: 1,
        verify_tls: true,
    }
}

#[tokio::test]
async fn https_probes_validate_certificates_unless_told_not_to() {
    let kubeconfig = std::fs::read_to_string(&env().hub_kubeconfig).unwrap();
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .unwrap()
        .to_owned();
    let (ip, port) = server.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let prober = Prober::new(Resolver::System);

    let verified = prober
        .probe(&spec(ip, port, Protocol::Https, "localhost"))
        .await;
    assert!(
        verified.as_ref().is_err_and(|e| e.contains("TLS")),
        "a self-signed certificate must fail validation: {verified:?}"
    );
    let mut insecure = spec(ip, port, Protocol::Https, "localhost");
    insecure.verify_tls = false;
    let answer = prober.probe(&insecure).await;
    assert!(
        answer.as_ref().is_ok_and(|a| a.starts_with("HTTP ")),
        "{answer:?}"
    );
    // Plain HTTP to a TLS port is not a healthy answer.
    let plain = prober
        .probe(&spec(ip, port, Protocol::Http, "localhost"))
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[tokio::test]
async fn host_names_resolve_through_the_configured_dns_server() {
    let env = env();
    let planes = DataPlane::start_many(&["127.0.0.12"]).await;
    let lb = format!("{}.example.test", unique_name("lb"));
    let alias = format!("{}.example.test", unique_name("alias"));
    let updater =
        UpdateClient::connect(env.dns_server, &env.tsig_key, Duration::from_secs(5), None)
            .await
            .unwrap();
    let mut update = Update::new(env.dns_zone.clone());
    update.add(record(
        Name::from_ascii(format!("{lb}.")).unwrap(),
        60,
        RData::A(hickory_proto::rr::rdata::A::new(127, 0, 0, 12)),
    ));
    update.add(record(
        Name::from_ascii(format!("{alias}.")).unwrap(),
        60,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(
            Name::from_ascii(format!("{lb}.")).unwrap(),
        )),
    ));
    updater.send(update).await.unwrap();

    let via_knot = Prober::new(Resolver::Server(env.dns_server));
    let mut probe = spec(&alias, planes[0].port(), Protocol::Http, &alias);
    probe.expected_status = vec![200];
    let ok = via_knot.probe(&probe).await;
    assert!(ok.as_ref().is_ok_and(|a| a == "HTTP 200"), "{ok:?}");

    // The system resolver does not know the emulated names.
    let system = Prober::new(Resolver::System).probe(&probe).await;
    assert!(
        system.as_ref().is_err_and(|e| e.starts_with("resolve")),
        "{system:?}"
    );
    // A name Knot does not have fails cleanly.
    let mut missing = probe.clone();
    missing.address = format!("{}.example.test", unique_name("missing"));
    let gone = via_knot.probe(&missing).await;
    assert!(
        gone.as_ref().is_err_and(|e| e.contains("no address")),
        "{gone:?}"
    );
}
