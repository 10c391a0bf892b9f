"""Security Hub helper for egressscan's integration tests (moto server or AWS; boto3).

  securityhub_check.py --endpoint URL --region R get-findings
      every finding of the caller's Security Hub (GetFindings, all pages) as a JSON list of
      {Id, AwsAccountId, ProductArn, RecordState, Workflow, Compliance, Severity, UpdatedAt, Types}
  securityhub_check.py validate-asff FILE
      checks each JSON line of FILE (egressscan export securityhub --dry-run) against the
      BatchImportFindings input shape of botocore's Security Hub model: types, required members,
      enum values and length limits (botocore's own validator checks neither enums nor maxima)
  securityhub_check.py --endpoint URL deny-import on|off
      an explicit Deny of securityhub:BatchImportFindings on the seeded scanner user (signature
      checks must be off for the change)

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of the environment.
"""
import argparse
import json
import sys

import boto3
import botocore.session
from botocore.validate import ParamValidator

# The documented ASFF limits (AwsSecurityFinding): not in the model
LIMITS = {"Title": 256, "Description": 1024, "Text": 512, "Id": 512, "GeneratorId": 512}


def shape_errors(shape, value, path, out):
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"{path}: not an object")
            return
        for k, v in value.items():
            if k not in shape.members:
                out.append(f"{path}.{k}: not a member of {shape.name}")
            else:
                shape_errors(shape.members[k], v, f"{path}.{k}", out)
    elif t == "list":
        for i, v in enumerate(value):
            shape_errors(shape.member, v, f"{path}[{i}]", out)
    elif t == "map":
        for k, v in value.items():
            shape_errors(shape.value, v, f"{path}[{k}]", out)
    elif t == "string":
        enum = shape.enum
        if enum and value not in enum:
            out.append(f"{path}: {value!r} not one of {enum}")
        name = path.rsplit(".", 1)[-1]
        if name in LIMITS and len(value.encode("utf-8")) > LIMITS[name]:
            out.append(f"{path}: longer than {LIMITS[name]} bytes")


def validate_asff(path):
    model = botocore.session.get_session().get_service_model("securityhub")
    op = model.operation_model("BatchImportFindings")
    n, errors = 0, []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            finding = json.loads(line)
            n += 1
            report = ParamValidator().validate({"Findings": [finding]}, op.input_shape)
            if report.has_errors():
                errors.append(f"line {lineno}: {report.generate_report()}")
            out = []
            shape_errors(op.input_shape.members["Findings"].member, finding, f"line {lineno}", out)
            errors.extend(out)
    for e in errors:
        print(e, file=sys.stderr)
    print(json.dumps({"findings": n, "errors": len(errors)}))
    return 1 if errors or n == 0 else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("command", choices=["get-findings", "validate-asff", "deny-import"])
    ap.add_argument("arg", nargs="?")
    a = ap.parse_args()
    if a.command == "validate-asff":
        return validate_asff(a.arg)
    if a.command == "deny-import":
        iam = boto3.client("iam", endpoint_url=a.endpoint, region_name="us-east-1")
        if a.arg == "on":
            iam.put_user_policy(UserName="egressscan", PolicyName="deny-securityhub",
                                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                    {"Effect": "Deny", "Action": "securityhub:BatchImportFindings",
                                     "Resource": "*"}]}))
        else:
            iam.delete_user_policy(UserName="egressscan", PolicyName="deny-securityhub")
        return 0
    sh = boto3.client("securityhub", endpoint_url=a.endpoint, region_name=a.region)
    out, token = [], None
    while True:
        kw = {"MaxResults": 100}
        if token:
            kw["NextToken"] = token
        page = sh.get_findings(**kw)
        for f in page["Findings"]:
            out.append({k: f.get(k) for k in ("Id", "AwsAccountId", "ProductArn", "RecordState",
                                              "Workflow", "Compliance", "Severity", "UpdatedAt",
                                              "Types", "Resources", "Title")})
        token = page.get("NextToken")
        if not token:
            break
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
