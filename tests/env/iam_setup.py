#!/usr/bin/env python3
"""Turns IAM enforcement on in a fresh moto server, with the shipped policies as the operator's
only rights:

    iam_setup.py ENDPOINT OUT_ENV
    iam_setup.py spoke-policy ENDPOINT KEYS_ENV ACCOUNT [WITHOUT_ACTION]

While moto still answers everyone (no authentication yet) it creates
  - user globalingress-tests-admin (everything): the tests' own calls (VPCs, zones, inspection);
  - user globalingress-hub with terraform/policies/hub.json: the operator's credentials;
  - in each spoke account the tests use: role globalingress-spoke with
    terraform/policies/spoke.json (what the operator assumes there), role
    globalingress-tests-admin (everything; what the tests assume there to build VPCs) and role
    globalingress-hub with hub.json (the admin assumes it to run the operator's code in an account
    of its own);
then switches authentication on (POST /moto-api/reset-auth 0). From then on a request signed with
any other key is refused (InvalidClientTokenId) and one outside the signer's policy is AccessDenied:
a permission missing from a shipped policy fails the test that needs it.

moto evaluates a statement's Resource against "*" for most services (it has no ARN for the
request), so the hub policy's record statement, narrowed to hostedzone/* in the file, is widened to
"*" here; moto ignores tag conditions (StringLike) too. What moto proves is the set of actions; the
resource and tag scoping is checked on the documents themselves (tests/terraform_check.py).

Writes the keys to OUT_ENV as shell variables. `spoke-policy` puts spoke.json (without one
action, to see a refusal) on ACCOUNT's globalingress-spoke role, with the admin keys of KEYS_ENV.
Standard library and boto3 (moto's virtualenv).
"""
import json
import os
import sys
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HUB_ACCOUNT = "123456789012"
# Accounts the tests act in through a role (spoke accounts).
SPOKE_ACCOUNTS = ["222222222222", "333333333333", "444444444444", "210987654321", "555555555555"]
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def policy(name, without=None):
    with open(os.path.join(ROOT, "terraform", "policies", name)) as f:
        doc = json.load(f)
    for statement in doc["Statement"]:
        if statement["Sid"] == "Route53RecordsOfManagedZones":
            statement["Resource"] = "*"
        statement["Action"] = [a for a in statement["Action"] if a != without]
        # moto names CloudWatch's actions after its signing name (monitoring:); IAM says cloudwatch:.
        statement["Action"] += [a.replace("cloudwatch:", "monitoring:") for a in statement["Action"]
                                if a.startswith("cloudwatch:")]
    return json.dumps(doc)


def spoke_policy(endpoint, keys_env, account, without=None):
    keys = dict(line.strip().split("=", 1) for line in open(keys_env) if "=" in line)
    sts = client("sts", endpoint, keys["GI_AWS_ADMIN_ACCESS_KEY_ID"], keys["GI_AWS_ADMIN_SECRET_ACCESS_KEY"])
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/globalingress-tests-admin",
                            RoleSessionName="globalingress-tests")["Credentials"]
    iam = client("iam", endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    iam.put_role_policy(RoleName="globalingress-spoke", PolicyName="globalingress-spoke",
                        PolicyDocument=policy("spoke.json", without))


def client(service, endpoint, key="testing", secret="testing", token=None):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)


def user(iam, name, document):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=document)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def main():
    endpoint, out = sys.argv[1], sys.argv[2]
    iam = client("iam", endpoint)
    admin = user(iam, "globalingress-tests-admin", json.dumps(EVERYTHING))
    operator = user(iam, "globalingress-hub", policy("hub.json"))
    hub_arn = f"arn:aws:iam::{HUB_ACCOUNT}:user/globalingress-hub"
    admin_arn = f"arn:aws:iam::{HUB_ACCOUNT}:user/globalingress-tests-admin"
    sts = client("sts", endpoint)
    for account in SPOKE_ACCOUNTS:
        # moto binds credentials of any role ARN to its account: the way in to create the roles.
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/globalingress-tests-admin",
                                RoleSessionName="globalingress-setup")["Credentials"]
        there = client("iam", endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
        trust = lambda principal: json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})
        there.create_role(RoleName="globalingress-tests-admin", AssumeRolePolicyDocument=trust("*"))
        there.put_role_policy(RoleName="globalingress-tests-admin", PolicyName="everything",
                              PolicyDocument=json.dumps(EVERYTHING))
        # The operator's hub policy in another account, for the tests that need an account of
        # their own (an empty health-check quota): the tests' admin assumes it.
        there.create_role(RoleName="globalingress-hub", AssumeRolePolicyDocument=trust(admin_arn))
        there.put_role_policy(RoleName="globalingress-hub", PolicyName="globalingress-hub",
                              PolicyDocument=policy("hub.json"))
        there.create_role(RoleName="globalingress-spoke", AssumeRolePolicyDocument=trust(hub_arn))
        there.put_role_policy(RoleName="globalingress-spoke", PolicyName="globalingress-spoke",
                              PolicyDocument=policy("spoke.json"))
    # Not form-encoded: moto reads the raw body.
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10).read()
    # Enforcement is on: the old static key is refused, the operator's is held to its policy.
    try:
        client("sts", endpoint).get_caller_identity()
        sys.exit("moto still accepts unknown keys after reset-auth")
    except Exception as e:  # botocore ClientError
        if "InvalidClientTokenId" not in str(e):
            raise
    try:
        client("iam", endpoint, *operator).list_users()
        sys.exit("moto lets the operator list IAM users: enforcement is off")
    except Exception as e:
        if "AccessDenied" not in str(e):
            raise
    with open(out + ".tmp", "w") as f:
        f.write(f"GI_AWS_ADMIN_ACCESS_KEY_ID={admin[0]}\nGI_AWS_ADMIN_SECRET_ACCESS_KEY={admin[1]}\n")
        f.write(f"GI_AWS_OPERATOR_ACCESS_KEY_ID={operator[0]}\nGI_AWS_OPERATOR_SECRET_ACCESS_KEY={operator[1]}\n")
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    if sys.argv[1] == "spoke-policy":
        spoke_policy(*sys.argv[2:])
    else:
        main()
