//! The integration tests: one binary, so every module shares one set of real servers (three
//! kube-apiservers, moto, Knot). See `support` for how the environment is found or started.

// In a test crate a panic is how a check fails, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod adoption;
mod api_validation;
mod aws_accounts;
mod backend_policies;
mod certificates;
mod controller;
mod dashboard;
mod failover;
mod failover_rules;
mod iam;
mod lb_in_place;
mod lb_lifecycle;
mod leadership;
mod load_balancers;
mod private_zones;
mod privatelink;
mod probing;
mod provision_restarts;
mod publishing;
mod rbac;
mod resilience;
mod restarts;
mod route53_health;
mod route53_pace;
mod route53_records;
mod secrets;
mod smoke_aws;
mod smoke_dns;
mod smoke_kube;
mod throttling;
mod zones;
