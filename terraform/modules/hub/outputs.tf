output "role_arn" {
  description = "The hub role: Helm value aws.roleArn (with irsa), and the principal spoke roles trust."
  value       = aws_iam_role.hub.arn
}

output "policy_arn" {
  description = "The hub policy."
  value       = aws_iam_policy.hub.arn
}

output "helm_values" {
  description = "The globalingress chart's values for this role (helm install -f, after yamlencode)."
  value = {
    aws = {
      identity = var.identity == "irsa" ? "irsa" : "podIdentity"
      roleArn  = var.identity == "irsa" ? aws_iam_role.hub.arn : ""
    }
    serviceAccount = {
      name = var.service_account
    }
  }
}
