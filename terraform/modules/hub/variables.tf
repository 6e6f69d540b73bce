variable "name" {
  description = "Name of the hub role and its policy."
  type        = string
  default     = "globalingress-hub"
}

variable "identity" {
  description = "How the operator's pods get the role: irsa (IAM Roles for Service Accounts, needs oidc_provider_arn and oidc_provider_url) or pod_identity (EKS Pod Identity, needs cluster_name)."
  type        = string
  default     = "irsa"
  validation {
    condition     = contains(["irsa", "pod_identity"], var.identity)
    error_message = "identity must be irsa or pod_identity."
  }
}

variable "oidc_provider_arn" {
  description = "With irsa: ARN of the hub cluster's IAM OIDC provider."
  type        = string
  default     = null
}

variable "oidc_provider_url" {
  description = "With irsa: the hub cluster's OIDC issuer URL without https:// (e.g. oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE)."
  type        = string
  default     = null
}

variable "cluster_name" {
  description = "With pod_identity: the hub EKS cluster whose ServiceAccount gets the role."
  type        = string
  default     = null
}

variable "namespace" {
  description = "Namespace of the Helm release (the chart's ServiceAccount lives there)."
  type        = string
  default     = "globalingress-system"
}

variable "service_account" {
  description = "Name of the chart's ServiceAccount (the release's full name: globalingress for a release named globalingress)."
  type        = string
  default     = "globalingress"
}

variable "hosted_zone_ids" {
  description = "Route 53 hosted zones whose records the operator writes (DNSZones of provider route53). Record changes are allowed in these zones only."
  type        = list(string)
  validation {
    condition     = length(var.hosted_zone_ids) > 0
    error_message = "Name at least one hosted zone."
  }
}

variable "spoke_role_arns" {
  description = "Roles in spoke accounts the operator may assume (terraform/modules/spoke output role_arn). Empty: the hub acts in its own account only."
  type        = list(string)
  default     = []
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary of the hub role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags of the role and the policy."
  type        = map(string)
  default     = {}
}
