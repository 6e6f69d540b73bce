# The operator's role in the hub account, with terraform/policies/hub.json — the document the test
# suite enforces on moto — narrowed here to the hosted zones and spoke roles given.

locals {
  policy = jsondecode(file("${path.module}/../../policies/hub.json"))
  # Record changes in the managed zones only; AssumeRole of the spoke roles only (no statement
  # at all without spokes).
  statements = [
    for s in local.policy.Statement : merge(s,
      s.Sid == "Route53RecordsOfManagedZones" ? { Resource = [for id in var.hosted_zone_ids : "arn:aws:route53:::hostedzone/${id}"] } : {},
      s.Sid == "SpokeRoles" ? { Resource = var.spoke_role_arns } : {},
    ) if !(s.Sid == "SpokeRoles" && length(var.spoke_role_arns) == 0)
  ]
}

data "aws_iam_policy_document" "trust" {
  dynamic "statement" {
    for_each = var.identity == "irsa" ? [1] : []
    content {
      actions = ["sts:AssumeRoleWithWebIdentity"]
      principals {
        type        = "Federated"
        identifiers = [var.oidc_provider_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "${var.oidc_provider_url}:sub"
        values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
      }
      condition {
        test     = "StringEquals"
        variable = "${var.oidc_provider_url}:aud"
        values   = ["sts.amazonaws.com"]
      }
    }
  }
  dynamic "statement" {
    for_each = var.identity == "pod_identity" ? [1] : []
    content {
      actions = ["sts:AssumeRole", "sts:TagSession"]
      principals {
        type        = "Service"
        identifiers = ["pods.eks.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "hub" {
  name                 = var.name
  description          = "globalingress operator (hub): Route 53 records of its zones, health checks, and its load balancers, certificates and endpoint services"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_policy" "hub" {
  name        = var.name
  description = "globalingress hub: terraform/policies/hub.json"
  policy      = jsonencode({ Version = local.policy.Version, Statement = local.statements })
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "hub" {
  role       = aws_iam_role.hub.name
  policy_arn = aws_iam_policy.hub.arn
}

resource "aws_eks_pod_identity_association" "hub" {
  count           = var.identity == "pod_identity" ? 1 : 0
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = aws_iam_role.hub.arn
  tags            = var.tags
}
