//! An in-memory [`PrivateLinkApi`] for unit tests, with the connection calls moto lacks:
//! endpoints made for an acceptance-required service wait in `pendingAcceptance` until
//! accepted; every call is recorded.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::PrivateLinkApi;
use crate::model::privatelink::{
    Connection, SeenEndpoint, SeenEndpointService, ServiceChanges, Verification, WantedEndpoint,
    WantedEndpointService,
};

#[derive(Debug, Default)]
pub struct State {
    pub services: BTreeMap<String, SeenEndpointService>,
    pub principals: BTreeMap<String, Vec<String>>,
    pub connections: BTreeMap<String, Vec<Connection>>,
    pub endpoints: BTreeMap<String, SeenEndpoint>,
    pub calls: Vec<String>,
    next: u32,
}

#[derive(Debug, Default)]
pub struct Fake {
    pub state: Mutex<State>,
}

impl Fake {
    fn with<T>(&self, call: &str, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.calls.push(call.to_owned());
        f(&mut s)
    }

    pub fn calls(&self) -> Vec<String> {
        self.with("", |s| {
            s.calls.pop();
            s.calls.clone()
        })
    }

    /// A consumer elsewhere asks to connect.
    pub fn request(&self, service: &str, endpoint: &str) {
        self.with("", |s| {
            s.calls.pop();
            s.connections
                .entry(service.to_owned())
                .or_default()
                .push(Connection {
                    endpoint_id: endpoint.to_owned(),
                    owner: "444455556666".into(),
                    state: "pendingAcceptance".into(),
                });
        });
    }
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

fn set_state(s: &mut State, id: &str, endpoints: &[String], to: &str) {
    for c in s.connections.entry(id.to_owned()).or_default() {
        if endpoints.contains(&c.endpoint_id) {
            c.state = to.to_owned();
        }
    }
    for e in s.endpoints.values_mut() {
        if endpoints.contains(&e.id) {
            e.state = to.to_owned();
        }
    }
}

impl PrivateLinkApi for Fake {
    fn services(&self) -> BoxFuture<'_, Result<Vec<SeenEndpointService>, String>> {
        ready(Ok(
            self.with("services", |s| s.services.values().cloned().collect())
        ))
    }
    fn create_service<'a>(
        &'a self,
        wanted: &'a WantedEndpointService,
        lb_arn: &'a str,
        _token: &'a str,
    ) -> BoxFuture<'a, Result<SeenEndpointService, String>> {
        ready(Ok(self.with("create_service", |s| {
            s.next += 1;
            let id = format!("vpce-svc-{}", s.next);
            let seen = SeenEndpointService {
                name: format!("com.amazonaws.vpce.eu-west-1.{id}"),
                id: id.clone(),
                load_balancers: [lb_arn.to_owned()].into(),
                acceptance_required: wanted.acceptance_required,
                private_dns_name: wanted.private_dns_name.clone(),
                verification: wanted.private_dns_name.as_ref().map(|_| Verification {
                    state: "pendingVerification".into(),
                    name: "_verify".into(),
                    value: "vpce:token".into(),
                }),
                state: "Available".into(),
                tags: wanted.tags.clone(),
            };
            s.services.insert(id, seen.clone());
            seen
        })))
    }
    fn modify_service<'a>(
        &'a self,
        id: &'a str,
        changes: &'a ServiceChanges,
    ) -> BoxFuture<'a, Result<(), String>> {
        ready(self.with("modify_service", |s| {
            let svc = s.services.get_mut(id).ok_or("no such service")?;
            if let Some(a) = changes.acceptance_required {
                svc.acceptance_required = a;
            }
            if let Some(n) = &changes.private_dns_name {
                svc.private_dns_name.clone_from(n);
            }
            svc.load_balancers
                .extend(changes.add_load_balancers.iter().cloned());
            for r in &changes.remove_load_balancers {
                svc.load_balancers.remove(r);
            }
            Ok(())
        }))
    }
    fn permissions<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<String>, String>> {
        ready(Ok(self.with("permissions", |s| {
            s.principals.get(id).cloned().unwrap_or_default()
        })))
    }
    fn modify_permissions<'a>(
        &'a self,
        id: &'a str,
        add: &'a [String],
        remove: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with("modify_permissions", |s| {
            let p = s.principals.entry(id.to_owned()).or_default();
            p.retain(|x| !remove.contains(x));
            p.extend(add.iter().cloned());
        });
        ready(Ok(()))
    }
    fn start_verification<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.with("start_verification", |s| {
            if let Some(v) = s.services.get_mut(id).and_then(|x| x.verification.as_mut()) {
                v.state = "verified".into();
            }
        });
        ready(Ok(()))
    }
    fn delete_service<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        ready(self.with("delete_service", |s| {
            let open = s.connections.get(id).is_some_and(|c| {
                c.iter()
                    .any(|c| c.state == "available" || c.state == "pendingAcceptance")
            });
            if open {
                return Err("ExistingVpcEndpointConnections".to_owned());
            }
            s.services.remove(id);
            Ok(())
        }))
    }
    fn connections<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<Connection>, String>> {
        ready(Ok(self.with("connections", |s| {
            s.connections.get(id).cloned().unwrap_or_default()
        })))
    }
    fn accept<'a>(
        &'a self,
        id: &'a str,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with("accept", |s| set_state(s, id, endpoints, "available"));
        ready(Ok(()))
    }
    fn reject<'a>(
        &'a self,
        id: &'a str,
        endpoints: &'a [String],
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with("reject", |s| set_state(s, id, endpoints, "rejected"));
        ready(Ok(()))
    }
    fn endpoints<'a>(
        &'a self,
        _owner_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SeenEndpoint>, String>> {
        ready(Ok(self.with("endpoints", |s| {
            s.endpoints.values().cloned().collect()
        })))
    }
    fn create_endpoint<'a>(
        &'a self,
        service_name: &'a str,
        wanted: &'a WantedEndpoint,
        _token: &'a str,
    ) -> BoxFuture<'a, Result<SeenEndpoint, String>> {
        ready(Ok(self.with("create_endpoint", |s| {
            s.next += 1;
            let id = format!("vpce-{}", s.next);
            let service = s
                .services
                .values()
                .find(|x| x.name == service_name)
                .cloned();
            let pending = service.as_ref().is_some_and(|x| x.acceptance_required);
            let seen = SeenEndpoint {
                id: id.clone(),
                vpc_id: wanted.vpc_id.clone(),
                service_name: service_name.to_owned(),
                state: if pending {
                    "pendingAcceptance"
                } else {
                    "available"
                }
                .into(),
                subnets: wanted.subnets.clone(),
                security_groups: wanted.security_groups.clone(),
                dns_name: Some(format!("{id}.vpce.amazonaws.com")),
                tags: wanted.tags.clone(),
            };
            if let Some(svc) = service {
                s.connections.entry(svc.id).or_default().push(Connection {
                    endpoint_id: id.clone(),
                    owner: "123456789012".into(),
                    state: seen.state.clone(),
                });
            }
            s.endpoints.insert(id, seen.clone());
            seen
        })))
    }
    fn delete_endpoint<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.with("delete_endpoint", |s| {
            s.endpoints.remove(id);
            for c in s.connections.values_mut() {
                for c in c.iter_mut().filter(|c| c.endpoint_id == id) {
                    c.state = "deleted".into();
                }
            }
        });
        ready(Ok(()))
    }
    fn retag<'a>(
        &'a self,
        ids: &'a [String],
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.with("retag", |s| {
            for id in ids {
                if let Some(x) = s.services.get_mut(id) {
                    x.tags.insert(key.to_owned(), value.to_owned());
                }
                if let Some(x) = s.endpoints.get_mut(id) {
                    x.tags.insert(key.to_owned(), value.to_owned());
                }
            }
        });
        ready(Ok(()))
    }
    fn subnet_cidrs<'a>(
        &'a self,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<std::collections::BTreeMap<String, String>, String>> {
        // Subnet `subnet-<n>` is 10.0.<n>.0/24 here.
        let cidrs = ids
            .iter()
            .map(|id| {
                let n: u32 = id.trim_start_matches("subnet-").parse().unwrap_or(0);
                (id.clone(), format!("10.0.{}.0/24", n % 256))
            })
            .collect();
        ready(Ok(cidrs))
    }
}
