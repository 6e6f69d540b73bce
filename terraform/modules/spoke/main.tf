# A role in a spoke account that the hub role assumes (with an external id) to manage the
# spoke's load balancers, certificates, endpoint services and alarms: terraform/policies/spoke.json,
# the document the test suite enforces on moto.

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = [var.hub_role_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "spoke" {
  name                 = var.name
  description          = "globalingress spoke: assumed by the hub for this account's load balancers, certificates and endpoint services"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
  tags                 = var.tags
}

resource "aws_iam_policy" "spoke" {
  name        = var.name
  description = "globalingress spoke: terraform/policies/spoke.json"
  policy      = file("${path.module}/../../policies/spoke.json")
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "spoke" {
  role       = aws_iam_role.spoke.name
  policy_arn = aws_iam_policy.spoke.arn
}
