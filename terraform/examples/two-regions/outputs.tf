output "helm_values" {
  description = "Values for helm install globalingress deploy/globalingress -f <(tofu output -json helm_values)."
  value       = module.hub.helm_values
}

output "hosted_zone_id" {
  description = "The DNSZone's spec.route53.hostedZoneId."
  value       = aws_route53_zone.apps.zone_id
}

output "name_servers" {
  description = "Delegate the domain to these at its parent."
  value       = aws_route53_zone.apps.name_servers
}

output "spoke_role_arns" {
  description = "Each SpokeCluster's spec.aws.roleArn."
  value = {
    eu-west-1 = module.spoke_eu_west_1.role_arn
    us-west-2 = module.spoke_us_west_2.role_arn
  }
}

output "external_id" {
  description = "The external id for the SpokeClusters' externalIdSecretRef Secret (kubectl create secret generic ... --from-literal=externalId=...)."
  value       = random_password.external_id.result
  sensitive   = true
}
