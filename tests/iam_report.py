#!/usr/bin/env python3
"""The AWS operations the integration suite made, by whom, against the shipped IAM policies:

    iam_report.py ENV_FILE

Reads the record of the environment's proxy (GI_AWS_OPERATIONS: every call of every test to
moto, which enforces IAM; tests/env/fault_proxy.py --record) and tells the callers apart by their
access keys: the operator's user (GI_AWS_OPERATOR_*, holding terraform/policies/hub.json), the
roles it assumed with them (globalingress-spoke*, holding spoke.json), sessions of role
globalingress-hub (hub.json in another account, which tests assume to run the operator's code
there), and the tests' admin (GI_AWS_ADMIN_*, and the other roles it assumed). Prints the operator's operations per service with
their counts, then fails when
  - an action of hub.json or spoke.json was never made by the operator, under either identity,
    with an answer other than AccessDenied: granted in excess, no code path the suite runs uses
    it. (A regional call is the same code in whichever account it is made, and
    tests/terraform_check.py holds spoke.json's regional actions equal to hub.json's, so the
    suite's calls are counted for both.) Exempt, each with its reason: dependent actions AWS
    checks beside another call (never on the wire), and operations moto does not implement, so no
    code path can reach them here; the report checks with moto itself that it still lacks them;
  - an identity made an action its own policy does not grant (moto let it through);
  - moto refused the operator a call (AccessDenied): a permission the policies lack;
  - a call came with a key of nobody above (the record cannot be trusted then).
Run with moto's virtualenv python (tests/test.sh does).
"""
import collections
import importlib
import json
import os
import sys

from iam_actions import DEPENDENT, snake

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Signing names -> IAM prefixes (CloudWatch signs as "monitoring").
PREFIX = {"monitoring": "cloudwatch"}
# Operations moto (5.2.5) does not implement: the operator's calls of them are covered by the unit
# tests through its ports' fakes. Each is checked to be still missing from moto.
MOTO_LACKS = {
    "ec2:AcceptVpcEndpointConnections": ("moto.ec2.responses", "EC2Response"),
    "ec2:RejectVpcEndpointConnections": ("moto.ec2.responses", "EC2Response"),
    "ec2:StartVpcEndpointServicePrivateDnsVerification": ("moto.ec2.responses", "EC2Response"),
    "route53:CreateVPCAssociationAuthorization": ("moto.route53.responses", "Route53"),
    "route53:DeleteVPCAssociationAuthorization": ("moto.route53.responses", "Route53"),
}


def env_file(path):
    values = {}
    for line in open(path, encoding="utf-8"):
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.rstrip("\n").split("=", 1)
            values[key] = value
    return values


def actions(policy):
    with open(os.path.join(ROOT, "terraform", "policies", policy), encoding="utf-8") as f:
        doc = json.load(f)
    return {a for s in doc["Statement"] if s["Effect"] == "Allow" for a in s["Action"]}


def main():
    env = env_file(sys.argv[1])
    lines = [json.loads(l) for l in open(env["GI_AWS_OPERATIONS"], encoding="utf-8") if l.strip()]
    who = {env["GI_AWS_ADMIN_ACCESS_KEY_ID"]: "admin", env["GI_AWS_OPERATOR_ACCESS_KEY_ID"]: "hub"}
    # Assumed keys take their caller's side: the operator's user assuming a spoke role is "spoke".
    for line in lines:
        if "assumed" in line:
            by = who.get(line["by"])
            role = line["role"].rsplit("/", 1)[-1]
            if role == "globalingress-hub":
                who[line["assumed"]] = "hub"
            elif by == "hub" and role.startswith("globalingress-spoke"):
                who[line["assumed"]] = "spoke"
            else:
                who[line["assumed"]] = by
    calls = [l for l in lines if "op" in l]
    unknown = collections.Counter(l["key"] for l in calls if who.get(l["key"]) is None)
    seen = {"hub": collections.Counter(), "spoke": collections.Counter()}
    denied = collections.Counter()
    for call in calls:
        side = who.get(call["key"])
        if side not in seen or call["fault"]:
            continue
        action = f'{PREFIX.get(call["service"], call["service"])}:{call["op"]}'
        if call["status"] == 403:
            denied[(side, action)] += 1
        else:
            seen[side][action] += 1

    failures = []
    for action, (module, cls) in sorted(MOTO_LACKS.items()):
        if hasattr(getattr(importlib.import_module(module), cls), snake(action)):
            failures.append(f"moto now implements {action}: take it off MOTO_LACKS, a test can make it")
    used = set(seen["hub"]) | set(seen["spoke"])
    print(f"iam report: {len(calls)} calls recorded, {sum(1 for c in calls if who.get(c['key']) == 'admin')} "
          "of them the tests' own")
    for side, policy in (("hub", "hub.json"), ("spoke", "spoke.json")):
        granted = actions(policy)
        made = seen[side]
        print(f"\n{side} ({policy}, {len(granted)} actions): {sum(made.values())} calls, "
              f"{len(made)} operations")
        by_service = collections.defaultdict(list)
        for action, n in sorted(made.items()):
            by_service[action.split(":")[0]].append(f"{action.split(':')[1]} {n}")
        for service, ops in sorted(by_service.items()):
            print(f"  {service} ({len(ops)}): {', '.join(ops)}")
        for action in sorted(granted - used - set(DEPENDENT) - set(MOTO_LACKS)):
            failures.append(f"{policy} grants {action}, which the operator never made in the suite")
        for action in sorted(set(made) - granted):
            failures.append(f"{side} made {action}, which {policy} does not grant, and moto let it through")
    for (side, action), n in sorted(denied.items()):
        failures.append(f"moto refused the operator ({side}) {action} {n} time(s): AccessDenied")
    for key, n in unknown.items():
        failures.append(f"{n} call(s) signed with a key of nobody known ({key[:8]}…)")
    if failures:
        print("", file=sys.stderr)
        for f in failures:
            print(f"iam report: FAIL {f}", file=sys.stderr)
        sys.exit(1)
    print(f"\nnot on the wire: {', '.join(sorted(DEPENDENT))} (dependent); "
          f"{', '.join(sorted(MOTO_LACKS))} (moto lacks them)")
    print("iam report: every other action granted was made, none refused")


if __name__ == "__main__":
    main()
