//! Knot accepts TSIG-signed RFC 2136 updates from hickory, answers them authoritatively, and
//! refuses updates signed with the wrong key.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use globalingress::dns::query::{self, Answer};
use globalingress::dns::rfc2136::{self, Update, UpdateClient};
use globalingress::dns::tsig::{Algorithm, TsigKey};
use globalingress::dns::{Name, RData, RecordType};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA};

use crate::support::{self, env};

const TIMEOUT: Duration = Duration::from_secs(5);

fn fresh_name() -> Name {
    Name::from_ascii(support::unique_name("smoke"))
        .unwrap()
        .append_domain(&env().dns_zone)
        .unwrap()
}

async fn ask(name: &Name, rtype: RecordType) -> Answer {
    query::authoritative(env().dns_server, name, rtype, TIMEOUT)
        .await
        .expect("query")
}

#[tokio::test]
async fn signed_update_is_answered_authoritatively() {
    let env = env();
    let client = UpdateClient::connect(env.dns_server, &env.tsig_key, TIMEOUT, None)
        .await
        .expect("connect");
    let name = fresh_name();
    let mut update = Update::new(env.dns_zone.clone());
    update
        .require_absent(name.clone(), RecordType::A)
        .add(rfc2136::record(
            name.clone(),
            30,
            RData::A(A::new(192, 0, 2, 10)),
        ))
        .add(rfc2136::record(
            name.clone(),
            30,
            RData::A(A::new(192, 0, 2, 11)),
        ))
        .add(rfc2136::record(
            name.clone(),
            30,
            RData::AAAA(AAAA::from(Ipv6Addr::new(
                0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10,
            ))),
        ));
    client.send(update).await.expect("signed update");

    let a = ask(&name, RecordType::A).await;
    assert_eq!(a.code, ResponseCode::NoError);
    let mut ips: Vec<Ipv4Addr> = a
        .records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 11)]
    );
    assert!(a.records.iter().all(|r| r.ttl == 30));
    let aaaa = ask(&name, RecordType::AAAA).await;
    assert_eq!(aaaa.records.len(), 1);

    // The prerequisite now fails: the server refuses the whole update and changes nothing.
    let mut again = Update::new(env.dns_zone.clone());
    again
        .require_absent(name.clone(), RecordType::A)
        .add(rfc2136::record(
            name.clone(),
            30,
            RData::A(A::new(192, 0, 2, 99)),
        ));
    let err = client
        .send(again)
        .await
        .expect_err("prerequisite must fail");
    assert_eq!(err.response_code(), Some(ResponseCode::YXRRSet), "{err}");
    assert_eq!(ask(&name, RecordType::A).await.records.len(), 2);

    // Deleting the RRset removes exactly it.
    let mut delete = Update::new(env.dns_zone.clone());
    delete.delete_rrset(name.clone(), RecordType::A);
    client.send(delete).await.expect("delete");
    assert!(ask(&name, RecordType::A).await.records.is_empty());
    assert_eq!(ask(&name, RecordType::AAAA).await.records.len(), 1);
}

#[tokio::test]
async fn update_with_the_wrong_key_is_refused() {
    let env = env();
    let wrong = TsigKey::from_base64(
        &env.tsig_key.name().to_string(),
        Algorithm::HmacSha256,
        "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktISE=",
    )
    .unwrap();
    let client = UpdateClient::connect(env.dns_server, &wrong, TIMEOUT, None)
        .await
        .expect("connect");
    let name = fresh_name();
    let mut update = Update::new(env.dns_zone.clone());
    update.add(rfc2136::record(
        name.clone(),
        30,
        RData::A(A::new(192, 0, 2, 66)),
    ));
    let err = client
        .send(update)
        .await
        .expect_err("a wrong key must be refused");
    // Knot answers NOTAUTH with a TSIG error of BADSIG and an empty MAC. hickory 0.26 cannot
    // verify such a response and reports a protocol error instead of the code, so either form
    // counts as refused here; what matters is that nothing changed, checked next.
    assert!(
        matches!(
            err.response_code(),
            Some(ResponseCode::NotAuth) | Some(ResponseCode::BADSIG)
        ) || matches!(err, rfc2136::Error::Exchange { .. }),
        "unexpected error: {err:?}"
    );
    let answer = ask(&name, RecordType::A).await;
    assert_eq!(answer.code, ResponseCode::NXDomain);
    assert!(answer.records.is_empty());
    // The no-op update that proves update rights tells the two keys apart as well (on a fresh
    // connection, as the DNSZone controller uses it).
    let fresh = UpdateClient::connect(env.dns_server, &wrong, TIMEOUT, None)
        .await
        .expect("connect");
    let verdict = fresh.verify_update_rights(&env.dns_zone).await;
    assert!(verdict.is_err(), "wrong key verified: {verdict:?}");

    // The same update signed with the right key goes through: the refusal was the key's doing.
    let right = UpdateClient::connect(env.dns_server, &env.tsig_key, TIMEOUT, None)
        .await
        .expect("connect");
    let mut update = Update::new(env.dns_zone.clone());
    update.add(rfc2136::record(
        name.clone(),
        30,
        RData::A(A::new(192, 0, 2, 66)),
    ));
    right
        .verify_update_rights(&env.dns_zone)
        .await
        .expect("the right key may update");
    right.send(update).await.expect("update with the right key");
    assert_eq!(ask(&name, RecordType::A).await.records.len(), 1);
}

/// A thousand GlobalIngresses published at once become several RFC 2136 updates, each within one
/// DNS message (an update over 65,535 bytes cannot be sent at all), and Knot answers all of them.
#[tokio::test]
async fn a_thousand_names_at_once_fit_in_rfc2136_messages() {
    use std::sync::Arc;

    use globalingress::dns::records::{Claim, Owner, Rrset};
    use globalingress::dns::rfc2136_zone::Rfc2136Zone;
    use globalingress::dns::zone_writer::{Config, ZoneWriter};
    use globalingress::model::dns::RecordRouting;

    let env = env();
    let provider =
        Rfc2136Zone::new(env.dns_server, "example.test", env.tsig_key.clone(), None).unwrap();
    let writer = ZoneWriter::spawn(Arc::new(provider), Config::default());
    let prefix = crate::support::unique_name("bulk");
    let claims = (0..1000).map(|i| {
        let host = format!("{prefix}-{i}.example.test");
        Claim {
            owner: Owner {
                owner: "test-hub".into(),
                resource: format!("bulk/gi{i}"),
            },
            names: vec![host.clone()],
            desired: vec![Rrset {
                name: host,
                rtype: globalingress::model::dns::RecordType::A,
                routing: RecordRouting::Simple,
                ttl: Some(30),
                values: vec![format!("10.9.{}.{}", i / 250, i % 250 + 1)],
                alias: None,
                health_check_id: None,
            }],
            shared: Vec::new(),
            keep_health_checks: false,
        }
    });
    let results = futures::future::join_all(claims.map(|c| writer.submit(c))).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|o| o.refused.is_empty()))
    );
    let stats = &writer.stats;
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    println!("1000 names (2000 record sets) in {batches} RFC 2136 updates");
    assert!(batches >= 2, "{batches}");
    for i in [0, 499, 999] {
        let name = Name::from_ascii(format!("{prefix}-{i}.example.test.")).unwrap();
        let answer = ask(&name, RecordType::A).await;
        assert_eq!(answer.records.len(), 1, "{name}");
    }
}
