#!/usr/bin/env python3
"""Checks of terraform/ that need no AWS provider (which cannot be built here):

  - every variable and output of every module and example has a description, and every
    variable is used;
  - every checkov skip says why;
  - every file() a module reads and every module source exists; policy files are valid IAM
    documents with unique statement ids;
  - the policies grant what the operator's code calls and nothing else: each action is an AWS
    SDK operation named in operator/src (or a dependent action AWS requires for one, listed
    with why in tests/iam_actions.py), and each operation the code calls is granted by the hub policy (the spoke
    policy: each regional one).

Run with the checkov virtualenv's python (it brings the HCL parser): tests/test.sh does.
"""
import glob
import json
import os
import re
import sys

import hcl2

from iam_actions import DEPENDENT, snake

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF = os.path.join(ROOT, "terraform")
# SDK clients' service names -> IAM prefixes.
SERVICES = {
    "route53": "route53",
    "elasticloadbalancingv2": "elasticloadbalancing",
    "acm": "acm",
    "ec2": "ec2",
    "cloudwatch": "cloudwatch",
    "sts": "sts",
}
# Operations of the regional services (the spoke role's share).
REGIONAL = {"elasticloadbalancing", "acm", "ec2", "cloudwatch"}
failures = []


def fail(message):
    failures.append(message)
    print(f"terraform: FAIL {message}", file=sys.stderr)


def one(value):
    """An attribute's value (this parser wraps some in a one-element list)."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def modules():
    for d in sorted(glob.glob(os.path.join(TF, "modules", "*")) + glob.glob(os.path.join(TF, "examples", "*"))):
        if os.path.isdir(d):
            yield d


def check_module(d):
    rel = os.path.relpath(d, ROOT)
    text = ""
    variables, outputs, module_sources = {}, {}, []
    for f in sorted(glob.glob(os.path.join(d, "*.tf"))):
        raw = open(f).read()
        text += raw
        with open(f) as fh:
            doc = hcl2.load(fh)
        for block in doc.get("variable", []):
            for name, body in block.items():
                variables[name] = body
        for block in doc.get("output", []):
            for name, body in block.items():
                outputs[name] = body
        for block in doc.get("module", []):
            for name, body in block.items():
                module_sources.append((name, one(body.get("source"))))
    for name, body in variables.items():
        if not str(one(body.get("description")) or "").strip():
            fail(f"{rel}: variable {name} has no description")
        if not re.search(r"\bvar\." + re.escape(name) + r"\b", text):
            fail(f"{rel}: variable {name} is never used")
    for name, body in outputs.items():
        if not str(one(body.get("description")) or "").strip():
            fail(f"{rel}: output {name} has no description")
    for name, source in module_sources:
        if not source or not os.path.isdir(os.path.normpath(os.path.join(d, source))):
            fail(f"{rel}: module {name} has source {source!r}, which does not exist")
    for m in re.finditer(r"#checkov:skip=([A-Z0-9_]+)(?::(.*))?", text):
        if len((m.group(2) or "").strip()) < 20:
            fail(f"{rel}: checkov skip {m.group(1)} without a reason")
    for m in re.finditer(r'file\("\$\{path\.module\}/([^"]+)"\)', text):
        path = os.path.normpath(os.path.join(d, m.group(1)))
        if not os.path.isfile(path):
            fail(f"{rel}: file({m.group(1)}) does not exist")
    print(f"terraform: ok   {rel}: {len(variables)} variables, {len(outputs)} outputs documented", file=sys.stderr)


def code_operations():
    """(IAM prefix, snake_case operation) pairs the operator's code calls."""
    ops = set()
    for f in glob.glob(os.path.join(ROOT, "operator", "src", "**", "*.rs"), recursive=True):
        text = open(f).read()
        services = [s for s in SERVICES if f"aws_sdk_{s}" in text]
        for m in re.finditer(r"\.([a-z]+(?:_[a-z0-9]+)+)\(\)", text):
            ops.add((tuple(services), m.group(1)))
    return ops


def check_policies():
    calls = code_operations()
    called = {op for _, op in calls}
    docs = {}
    for f in sorted(glob.glob(os.path.join(TF, "policies", "*.json"))):
        name = os.path.basename(f)
        doc = json.load(open(f))
        docs[name] = doc
        if doc.get("Version") != "2012-10-17":
            fail(f"{name}: Version must be 2012-10-17")
        sids = [s.get("Sid") for s in doc["Statement"]]
        if len(set(sids)) != len(sids) or None in sids:
            fail(f"{name}: statement ids must be present and unique")
        actions = sorted({a for s in doc["Statement"] for a in s["Action"]})
        before = len(failures)
        for action in actions:
            if action in DEPENDENT:
                continue
            if "*" in action:
                fail(f"{name}: wildcard action {action}")
            elif snake(action) not in called:
                fail(f"{name}: grants {action}, which no code path calls")
        if len(failures) == before:
            print(f"terraform: ok   {name}: {len(actions)} actions, each used by the code", file=sys.stderr)
    # Every SDK operation the code calls is granted. Operations are the zero-argument calls at a
    # line's end named verb_object (`.describe_load_balancers()` before `.send()`); accessors of
    # answers are nouns (`.load_balancers()`), builder setters take arguments.
    granted = {
        name: {(a.split(":")[0], snake(a)) for s in doc["Statement"] for a in s["Action"]}
        for name, doc in docs.items()
    }
    granted_ops = {op for g in granted.values() for _, op in g}
    verbs = ("list_", "get_", "describe_", "create_", "delete_", "modify_", "change_", "put_",
             "register_", "deregister_", "set_", "add_", "request_", "assume_", "associate_",
             "start_", "accept_", "reject_", "update_")
    not_operations = {"list_all", "request_mut", "request_interval", "change_info", "set_identifier", "set_id"}
    for op in sorted(called):
        if op.startswith(verbs) and op not in not_operations and op not in granted_ops:
            fail(f"the code calls {op}, which no policy grants")
    hub = granted.get("hub.json", set())
    spoke = granted.get("spoke.json", set())
    for p in sorted(spoke - hub):
        fail(f"spoke.json grants {p}, which hub.json lacks (the hub acts in its own account too)")
    for p in sorted(hub):
        if p[0] in REGIONAL and p not in spoke:
            fail(f"hub.json grants the regional {p[0]}:{p[1]}, which spoke.json lacks")


for d in modules():
    check_module(d)
check_policies()
if failures:
    sys.exit(f"terraform: {len(failures)} check(s) failed")
print("terraform: every check passed", file=sys.stderr)
