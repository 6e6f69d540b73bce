variable "name" {
  description = "Name of the spoke role and its policy. The hub policy allows assuming roles named globalingress-spoke*."
  type        = string
  default     = "globalingress-spoke"
  validation {
    condition     = startswith(var.name, "globalingress-spoke")
    error_message = "The hub policy assumes roles named globalingress-spoke* only."
  }
}

variable "hub_role_arn" {
  description = "The hub role that may assume this one (terraform/modules/hub output role_arn)."
  type        = string
}

variable "external_id" {
  description = "The external id the hub must present (the SpokeCluster's spec.aws.externalIdSecretRef holds it). Keep it out of version control."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.external_id) >= 16
    error_message = "Use an external id of at least 16 characters."
  }
}

variable "permissions_boundary_arn" {
  description = "Optional permissions boundary of the spoke role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags of the role and the policy."
  type        = map(string)
  default     = {}
}
