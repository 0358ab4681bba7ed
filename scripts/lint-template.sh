#!/usr/bin/env bash
# Lints template.yaml twice with cfn-lint: as written, and after the SAM transform.
#
# cfn-lint checks a SAM template mostly before the transform, where some deploy-time failures do
# not show yet: e.g. a function whose environment refers to the HTTP API that routes to it looks
# fine, but SAM puts that function's ARN in the API's body, and CloudFormation then rejects the
# stack for a circular dependency (E3004 on the transformed template). The transform runs offline
# with aws-sam-translator (requirements.txt).
#   scripts/lint-template.sh [template.yaml]   (PYTHON, CFN_LINT default to .venv/bin)
set -euo pipefail
cd "$(dirname "$0")/.."

template=${1:-template.yaml}
python=${PYTHON:-.venv/bin/python}
cfn_lint=${CFN_LINT:-.venv/bin/cfn-lint}
transformed=target/template.transformed.json
mkdir -p target

"$cfn_lint" "$template"

# The transform needs a region for ARNs; any region does, nothing is contacted.
AWS_DEFAULT_REGION=us-east-1 "$python" - "$template" "$transformed" <<'PY'
import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policies beyond SAM's own, so nothing needs looking up."""

    def load(self):
        return {}


source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as f:
    template = yaml_parse(f.read())
# `sam package` replaces a local CodeUri by the S3 object it uploads; stand in for it.
for resource in template.get("Resources", {}).values():
    properties = resource.get("Properties") or {}
    code_uri = properties.get("CodeUri")
    if isinstance(code_uri, str) and not code_uri.startswith("s3://"):
        properties["CodeUri"] = "s3://placeholder-bucket/placeholder-key.zip"
try:
    transformed = transform(template, {}, NoManagedPolicies())
except InvalidDocumentException as e:
    for cause in e.causes:
        print(f"SAM transform: {cause.message}", file=sys.stderr)
    sys.exit(1)
with open(target, "w", encoding="utf-8") as f:
    json.dump(transformed, f, indent=1)
PY

"$cfn_lint" "$transformed"
echo "cfn-lint: $template clean, before and after the SAM transform"
