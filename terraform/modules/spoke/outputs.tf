output "role_arn" {
  description = "The spoke role: the SpokeCluster's spec.aws.roleArn, and an entry of the hub module's spoke_role_arns."
  value       = aws_iam_role.spoke.arn
}
