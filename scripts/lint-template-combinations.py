#!/usr/bin/env python3
"""Lint template.yaml once per deployable combination of its switches, in each partition.

scripts/lint-template.sh lints the template as written, where cfn-lint weighs every condition
at once. Here each combination is made real: the SAM transform runs with that combination's
parameter values and a region of the partition (ARNs SAM writes name the partition), the
template's Rules are evaluated with those values (a combination they refuse is a failure, and a
refused combination they let through is one too), and cfn-lint checks the transformed template
with the same parameter values against the regions of that partition.

Combinations: EgressMode (nat-instance, nat-gateway, none) x custom domain (off, on). "On" also
sets MpVerifyFile, forward (the worker), JS-SDK origins, template receipts, QR code counts, the
api function's allow-list and callers (two roles, one in another account), so every conditional
resource is created in some combination.

  scripts/lint-template-combinations.py [template.yaml]   (CFN_LINT defaults to .venv/bin/cfn-lint)
"""

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# Recommended regions (docs/deploy.md, "Where to deploy") and us-east-1 for reference; China
# (aws-cn partition) to catch what its partition lacks.
PARTITIONS = {
    "aws": ["us-east-1", "ap-east-1", "ap-northeast-1", "ap-southeast-1"],
    "aws-cn": ["cn-north-1", "cn-northwest-1"],
}

BASE = {
    "WeChatAppId": "wxfa4e000000000001",
    "WeChatAppSecret": "0123456789abcdef0123456789abcdef",
    "WeChatToken": "token123",
    "SessionSecret": "s" * 32,
}
DOMAIN_ON = {
    "CustomDomainName": "wx.example.com",
    "CustomDomainCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/"
    "12345678-1234-1234-1234-123456789012",
    "MpVerifyFile": "MP_verify_AbC123.txt",
    "ForwardSecret": "f" * 32,
    "JssdkAllowedOrigins": "https://wx.example.com",
    "TemplateReceipts": "true",
    "QrStats": "true",
    "ApiAllowedPaths": "/cgi-bin/message/template/send,/cgi-bin/user/info",
    "ApiCallerRoleArns": "arn:aws:iam::123456789012:role/notify,arn:aws:iam::210987654321:role/crm",
}
COMBINATIONS = [
    (f"egress-{mode}-domain-{domain}", {**BASE, "EgressMode": mode, **(DOMAIN_ON if domain == "on" else {})})
    for mode in ("nat-instance", "nat-gateway", "none")
    for domain in ("off", "on")
]
# Combinations the Rules must refuse before CloudFormation creates anything.
REFUSED = [
    ("domain-without-certificate", {**BASE, "CustomDomainName": "wx.example.com"}),
    ("certificate-without-domain", {**BASE, "CustomDomainCertificateArn": DOMAIN_ON["CustomDomainCertificateArn"]}),
    ("no-secret-parameters", {"WeChatAppId": BASE["WeChatAppId"]}),
]


# The translator's metrics warn when garbage-collected unpublished; nothing here publishes them.
logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)


class NoManagedPolicies:
    """The template names no managed policies beyond SAM's own, so nothing needs looking up."""

    def load(self):
        return {}


def evaluate(expr, values):
    """The value of a rule's condition or assertion (the intrinsics the template's Rules use)."""
    if isinstance(expr, (str, bool)):
        return expr
    if not isinstance(expr, dict) or len(expr) != 1:
        raise ValueError(f"unsupported rule expression {expr!r}")
    (fn, arg), = expr.items()
    if fn == "Ref":
        return values[arg]
    if fn == "Fn::Equals":
        return evaluate(arg[0], values) == evaluate(arg[1], values)
    if fn == "Fn::Not":
        return not evaluate(arg[0], values)
    if fn == "Fn::And":
        return all(evaluate(a, values) for a in arg)
    if fn == "Fn::Or":
        return any(evaluate(a, values) for a in arg)
    raise ValueError(f"unsupported rule function {fn}")


def broken_rules(template, overrides):
    """The AssertDescription of every assertion these parameter values fail."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(overrides)
    broken = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], values):
            continue
        broken += [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], values)]
    return broken


def transformed(source, values, region):
    """The SAM transform of the template with these parameter values, in this region."""
    os.environ["AWS_DEFAULT_REGION"] = region
    template = yaml_parse(source)
    # `sam package` replaces a local CodeUri by the S3 object it uploads; stand in for it.
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
            properties["CodeUri"] = "s3://placeholder-bucket/placeholder-key.zip"
    return transform(template, values, NoManagedPolicies())


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    cfn_lint = os.environ.get("CFN_LINT", ".venv/bin/cfn-lint")
    with open(path, encoding="utf-8") as f:
        source = f.read()
    template = yaml_parse(source)
    os.makedirs("target/template-combinations", exist_ok=True)
    failures = []
    started = time.monotonic()

    for name, values in REFUSED:
        if not broken_rules(template, values):
            failures.append(f"{name}: the template's Rules accept it")

    lints = []
    for name, values in COMBINATIONS:
        broken = broken_rules(template, values)
        if broken:
            failures.append(f"{name}: refused by the Rules: {broken}")
            continue
        for partition, regions in PARTITIONS.items():
            try:
                document = transformed(source, values, regions[0])
            except InvalidDocumentException as e:
                failures += [f"{name} ({partition}): SAM transform: {c.message}" for c in e.causes]
                continue
            out = f"target/template-combinations/{name}.{partition}.json"
            with open(out, "w", encoding="utf-8") as f:
                json.dump(document, f, indent=1)
            parameters = [f"{k}={v}" for k, v in values.items()]
            command = [cfn_lint, "--regions", *regions, "--parameters", *parameters, "--", out]
            lints.append((f"{name} ({partition}, {' '.join(regions)})", command))

    # Two at a time: each cfn-lint is one busy core for a few seconds.
    def lint(job):
        label, command = job
        result = subprocess.run(command, capture_output=True, text=True)
        return None if result.returncode == 0 else f"{label}:\n{result.stdout}{result.stderr}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures += [failure for failure in pool.map(lint, lints) if failure]

    for failure in failures:
        print(failure, file=sys.stderr)
    checked = len(COMBINATIONS) * len(PARTITIONS)
    print(
        f"{path}: {len(COMBINATIONS)} combinations x {len(PARTITIONS)} partitions ({checked} transformed "
        f"templates, regions {', '.join(r for rs in PARTITIONS.values() for r in rs)}), "
        f"{len(REFUSED)} refused combinations: {len(failures)} failures "
        f"({time.monotonic() - started:.0f} s)"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
