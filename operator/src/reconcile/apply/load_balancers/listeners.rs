//! The listeners of one provisioned load balancer: the forwarding one (with its certificate
//! under `spec.tls`), an ALB's redirect to HTTPS, and the deletion of listeners on ports
//! nothing wants any more (the plain one once TLS is on).

use super::{Failure, failed};
use crate::aws::elb::{Inventory, listeners};
use crate::model::load_balancer::{
    ListenerChange, WantedLoadBalancer, listener_change, redirect_change, resources, tags,
    unwanted_listeners,
};
use crate::reconcile::Deps;

/// Makes the forwarding listener (and an ALB's redirect with TLS) exist as wanted, and deletes
/// listeners of this load balancer on ports nothing wants any more.
#[allow(clippy::too_many_arguments)]
pub(super) async fn listeners_of(
    owner_id: &str,
    owner: &str,
    lb: &WantedLoadBalancer,
    lb_arn: &str,
    tg_arn: &str,
    certificate: Option<&str>,
    inventory: &Inventory,
    deps: &Deps,
) -> Result<(), Failure> {
    let client = &inventory.client;
    let metrics = &deps.load_balancers.metrics;
    let mut all = inventory.listeners(lb_arn).await.map_err(failed)?;
    let tags = tags(owner_id, owner, &lb.target, resources::LISTENER);
    match listener_change(&lb.listener, tg_arn, certificate, &all) {
        None => {}
        Some(ListenerChange::Create) => {
            let guard = inventory.write_guard();
            let created = listeners::create_listener(
                client,
                lb_arn,
                &lb.listener,
                tg_arn,
                certificate,
                &tags,
            )
            .await
            .map_err(failed)?;
            metrics.changed(resources::LISTENER, "created");
            all.push(created);
            inventory.put_listeners(lb_arn, all.clone()).await;
            guard.done();
        }
        Some(ListenerChange::Modify { arn }) => {
            listeners::modify_listener(client, &arn, &lb.listener, tg_arn, certificate)
                .await
                .map_err(failed)?;
            metrics.changed(resources::LISTENER, "modified");
            for l in all.iter_mut().filter(|l| l.arn == arn) {
                l.protocol = lb.listener.protocol.as_str().to_owned();
                l.target_group = Some(tg_arn.to_owned());
                l.certificate = certificate.map(str::to_owned);
                l.redirect_to = None;
            }
            inventory.put_listeners(lb_arn, all.clone()).await;
        }
    }
    if let Some(redirect) = &lb.redirect
        && let Some(change) = redirect_change(redirect, &all)
    {
        let existing = match &change {
            ListenerChange::Modify { arn } => Some(arn.as_str()),
            ListenerChange::Create => None,
        };
        let guard = inventory.write_guard();
        let put = listeners::put_redirect(client, lb_arn, redirect, existing, &tags)
            .await
            .map_err(failed)?;
        metrics.changed(
            resources::LISTENER,
            if existing.is_some() {
                "modified"
            } else {
                "created"
            },
        );
        all.retain(|l| l.arn != put.arn);
        all.push(put);
        inventory.put_listeners(lb_arn, all.clone()).await;
        guard.done();
    }
    let unwanted: Vec<String> = unwanted_listeners(lb, &all)
        .iter()
        .map(|l| l.arn.clone())
        .collect();
    for arn in &unwanted {
        listeners::delete_listener(client, arn)
            .await
            .map_err(failed)?;
        metrics.changed(resources::LISTENER, "deleted");
        all.retain(|l| &l.arn != arn);
        inventory.put_listeners(lb_arn, all.clone()).await;
    }
    Ok(())
}
