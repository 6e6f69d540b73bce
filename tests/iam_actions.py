"""What tests/terraform_check.py and tests/iam_report.py both need to know about IAM actions.
Standard library only (each script runs in a virtualenv of its own)."""
import re

# Actions AWS requires beside an operation the code calls (IAM "dependent actions"): never an
# operation of their own, in the code or on the wire.
DEPENDENT = {
    "ec2:DescribeVpcs": "AssociateVPCWithHostedZone checks the VPC with it",
}


def snake(action):
    """The SDK's method name of an action: `ec2:DescribeVpcEndpoints` -> `describe_vpc_endpoints`."""
    # VPC stays one word in the SDK's method names (associate_vpc_with_hosted_zone).
    op = action.split(":", 1)[1].replace("VPC", "Vpc")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()
