"""One IAM user per Lambda function of template.yaml, on a moto server, holding exactly
the policy the template gives that function.

    iam_users.py --endpoint URL --template template.yaml --table-arn ARN --key-arn ARN \
        --prefix NAME [--without Function=service:Action ...]

Reads every AWS::Serverless::Function's `Policies` with cfn-lint's YAML decoder,
resolves `!GetAtt Table.Arn`, `!GetAtt SigningKey.Arn` and `!Sub` strings made of them
against the table and key the caller provisioned, creates user `<prefix>-<Function>`
with that policy inline and an access key, and prints a JSON object:
{"<Function>": {"userArn", "accessKeyId", "secretAccessKey", "policy"}}.

`--without F=A` also creates `<prefix>-<F>-without-<A>`, F's policy minus action A
(entry "<F> without <A>"), for tests proving that a missing permission fails.

Anything the extractor cannot resolve (a SAM policy template, a managed policy name, a
custom Role, another intrinsic function or resource) is an error: exit status 2 and a
sentence on stderr, never a silently narrower or wider policy.

Credentials for the admin calls come from the environment (the moto server's root key).
"""
import argparse
import copy
import json
import re
import sys

import boto3
from cfnlint.decode import cfn_yaml


class Unresolvable(Exception):
    pass


def resolve(value, arns):
    """`value` with the template's intrinsic functions replaced by ARNs."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [resolve(v, arns) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (name, arg), = value.items()
            if name == "Fn::GetAtt":
                target = ".".join(arg) if isinstance(arg, list) else arg
                if target not in arns:
                    raise Unresolvable(f"!GetAtt {target}")
                return arns[target]
            if name == "Fn::Sub":
                if not isinstance(arg, str):
                    raise Unresolvable("!Sub with a variable map")

                def sub(match):
                    if match.group(1) not in arns:
                        raise Unresolvable(f"${{{match.group(1)}}} in !Sub {arg!r}")
                    return arns[match.group(1)]

                return re.sub(r"\$\{([^}!]+)\}", sub, arg)
            if name.startswith("Fn::") or name == "Ref":
                raise Unresolvable(f"{name} {arg!r}")
        return {k: resolve(v, arns) for k, v in value.items()}
    return value


def function_policies(template, arns):
    """{function: policy document} for every AWS::Serverless::Function."""
    out = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        if "Role" in props:
            raise Unresolvable(f"{name} has a Role of its own; its Policies would be ignored")
        statements = []
        for policy in props.get("Policies", []):
            if not isinstance(policy, dict) or "Statement" not in policy:
                raise Unresolvable(
                    f"{name}: policy {dict(policy) if isinstance(policy, dict) else policy!r} "
                    "is a SAM policy template or managed policy, not an inline statement list"
                )
            stated = policy["Statement"]
            statements += stated if isinstance(stated, list) else [stated]
        out[name] = {
            "Version": "2012-10-17",
            "Statement": [resolve(copy.deepcopy(s), arns) for s in statements],
        }
    if "Policies" in template.get("Globals", {}).get("Function", {}):
        raise Unresolvable("Globals.Function.Policies")
    return out


def without(policy, action):
    """`policy` minus `action` (a statement left without actions is dropped)."""
    out = copy.deepcopy(policy)
    kept = []
    for statement in out["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != action]
        if statement["Action"]:
            kept.append(statement)
    out["Statement"] = kept
    if json.dumps(out) == json.dumps(policy):
        raise Unresolvable(f"the policy has no action {action} to take away")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--table-arn", required=True)
    parser.add_argument("--key-arn", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--without", action="append", default=[])
    args = parser.parse_args()

    template = cfn_yaml.load(args.template)
    arns = {"Table.Arn": args.table_arn, "SigningKey.Arn": args.key_arn}
    try:
        policies = function_policies(template, arns)
        for spec in args.without:
            function, _, action = spec.partition("=")
            if function not in policies:
                raise Unresolvable(f"--without names no function of the template: {function}")
            policies[f"{function} without {action}"] = without(policies[function], action)
    except Unresolvable as e:
        print(f"iam_users.py: cannot extract the functions' policies from {args.template}: {e}", file=sys.stderr)
        return 2

    iam = boto3.client("iam", endpoint_url=args.endpoint, region_name="us-east-1")
    out = {}
    for name, policy in policies.items():
        user = f"{args.prefix}-{re.sub(r'[^A-Za-z0-9+=,.@_-]', '-', name)}"[:64]
        created = iam.create_user(UserName=user)["User"]
        iam.put_user_policy(UserName=user, PolicyName="template", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        out[name] = {
            "userArn": created["Arn"],
            "accessKeyId": key["AccessKeyId"],
            "secretAccessKey": key["SecretAccessKey"],
            "policy": policy,
        }
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
