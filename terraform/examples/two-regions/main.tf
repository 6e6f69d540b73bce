# A hub and two spokes: the operator's role in the hub account (IRSA), one spoke role in each spoke
# account that the hub may assume with an external id, and the public hosted zone the global
# hostnames live in. `tofu apply`, then the outputs go into the Helm values and the SpokeClusters
# (README: Install).

provider "aws" {
  region = var.hub_region
}

provider "aws" {
  alias  = "eu_west_1"
  region = var.spokes["eu-west-1"].region
  assume_role {
    role_arn = var.spokes["eu-west-1"].terraform_role
  }
}

provider "aws" {
  alias  = "us_west_2"
  region = var.spokes["us-west-2"].region
  assume_role {
    role_arn = var.spokes["us-west-2"].terraform_role
  }
}

data "aws_eks_cluster" "hub" {
  name = var.hub_cluster_name
}

data "aws_iam_openid_connect_provider" "hub" {
  url = data.aws_eks_cluster.hub.identity[0].oidc[0].issuer
}

resource "aws_route53_zone" "apps" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing needs a KMS key and a DS record at the parent zone, which this example cannot create; enable it where you own the parent.
  #checkov:skip=CKV2_AWS_39:Query logging needs a CloudWatch log group in us-east-1 and a resource policy; add it where you keep DNS logs.
  name    = var.domain
  comment = "globalingress: global hostnames"
}

resource "random_password" "external_id" {
  length  = 32
  special = false
}

data "aws_caller_identity" "eu_west_1" {
  provider = aws.eu_west_1
}

data "aws_caller_identity" "us_west_2" {
  provider = aws.us_west_2
}

locals {
  hub_role   = "globalingress-hub"
  spoke_role = "globalingress-spoke"
  # Named ahead: the hub's policy lists the spoke roles, and each spoke role's trust policy names
  # the hub role, which AWS requires to exist first (so the spokes depend on the hub module).
  spoke_role_arns = {
    eu-west-1 = "arn:aws:iam::${data.aws_caller_identity.eu_west_1.account_id}:role/${local.spoke_role}"
    us-west-2 = "arn:aws:iam::${data.aws_caller_identity.us_west_2.account_id}:role/${local.spoke_role}"
  }
}

module "hub" {
  source            = "../../modules/hub"
  name              = local.hub_role
  identity          = "irsa"
  oidc_provider_arn = data.aws_iam_openid_connect_provider.hub.arn
  oidc_provider_url = replace(data.aws_eks_cluster.hub.identity[0].oidc[0].issuer, "https://", "")
  hosted_zone_ids   = [aws_route53_zone.apps.zone_id]
  spoke_role_arns   = values(local.spoke_role_arns)
}

module "spoke_eu_west_1" {
  source       = "../../modules/spoke"
  providers    = { aws = aws.eu_west_1 }
  name         = local.spoke_role
  hub_role_arn = module.hub.role_arn
  external_id  = random_password.external_id.result
}

module "spoke_us_west_2" {
  source       = "../../modules/spoke"
  providers    = { aws = aws.us_west_2 }
  name         = local.spoke_role
  hub_role_arn = module.hub.role_arn
  external_id  = random_password.external_id.result
}
