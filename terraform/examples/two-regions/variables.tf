variable "hub_region" {
  description = "Region of the hub EKS cluster."
  type        = string
  default     = "us-east-1"
}

variable "hub_cluster_name" {
  description = "Name of the hub EKS cluster (its OIDC provider gives the operator its role)."
  type        = string
}

variable "domain" {
  description = "The public hosted zone to create for the global hostnames, e.g. apps.example.com."
  type        = string
}

variable "spokes" {
  description = "The two spoke accounts and regions: a role in each that Terraform may assume to create the spoke role there."
  type = map(object({
    region         = string
    terraform_role = string
  }))
  default = {
    eu-west-1 = { region = "eu-west-1", terraform_role = "arn:aws:iam::111122223333:role/terraform" }
    us-west-2 = { region = "us-west-2", terraform_role = "arn:aws:iam::444455556666:role/terraform" }
  }
}
