#!/usr/bin/env bash
# Lint the SAM template; with --build, also build the four Lambda binaries with SAM.
#
#   tests/template-check.sh            cfn-lint + sam validate --lint + transformed-template lint + routes
#   tests/template-check.sh --build    ... then `sam build` (needs the function crates,
#                                      cargo and cargo-lambda)
#
# Works offline except for the first run, which installs aws-sam-cli and cfn-lint from
# PyPI into .tools/sam-venv. No Docker needed: nothing here runs `sam local`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/sam-venv"
TEMPLATE="$ROOT/template.yaml"

BUILD=0
for arg in "$@"; do
  case "$arg" in
    --build) BUILD=1 ;;
    -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

# No telemetry, no update check, no prompts; the region only feeds the transform
# (pseudo parameters) and is never contacted.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_VERSION_CHECK=1
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

START=$SECONDS
section() { printf '\n=== %s ===\n' "$*"; }

section "tools ($VENV)"
if [[ ! -x "$VENV/bin/sam" || ! -x "$VENV/bin/cfn-lint" ]]; then
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli cfn-lint
fi
"$VENV/bin/sam" --version
"$VENV/bin/cfn-lint" --version

cd "$ROOT"

section "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" "$TEMPLATE"
echo "ok"

section "sam validate --lint"
"$VENV/bin/sam" validate --lint --template-file "$TEMPLATE" --region "$AWS_DEFAULT_REGION"

# Both checks above lint the SAM template itself and miss dependency cycles that only
# exist between the resources SAM generates (e.g. a function's environment naming an
# HttpApi whose generated OpenAPI body names the function). Transform the template
# locally, as CloudFormation would, and lint the result.
section "cfn-lint on the SAM-transformed template"
TRANSFORMED="$(mktemp --suffix=.json)"
trap 'rm -f "$TRANSFORMED"' EXIT
"$VENV/bin/python" - "$TEMPLATE" "$TRANSFORMED" <<'PY'
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

src, dst = sys.argv[1], sys.argv[2]
with open(src) as f:
    template = yaml_parse(f.read())
# `sam package` replaces local CodeUri paths with S3 locations; stand one in.
for resource in template.get("Resources", {}).values():
    if resource.get("Type") == "AWS::Serverless::Function":
        resource.setdefault("Properties", {})["CodeUri"] = "s3://template-check-bucket/code.zip"

class NoManagedPolicies:
    # Only consulted for managed policies named without an ARN; this template has none.
    def load(self):
        return {}

with open(dst, "w") as f:
    json.dump(transform(template, {}, NoManagedPolicies()), f, indent=1)
PY
# W2001 (unused parameter) is left to the lint of the template itself: the transform
# resolves `Tracing: !Ref Tracing` with the default (Disabled) into no TracingConfig,
# so the parameter looks unused here only.
"$VENV/bin/cfn-lint" --ignore-checks W2001 -- "$TRANSFORMED"
echo "ok"

# The routes, exactly: each path reaches the function that serves it (the same table as
# tests/e2e's gateway and the dev server's ToolRouter). A route left out is a 404 from
# API Gateway that no lint can see.
section "routes: every path to its function"
"$VENV/bin/python" - "$TEMPLATE" <<'PY'
import sys
from samtranslator.yaml_helper import yaml_parse

with open(sys.argv[1]) as f:
    resources = yaml_parse(f.read())["Resources"]
function_of = {}
for name, r in resources.items():
    if r["Type"] == "AWS::ApiGatewayV2::Integration":
        function_of[name] = r["Properties"]["IntegrationUri"]["Fn::GetAtt"][0]
routes = {}
for name, r in resources.items():
    if r["Type"] == "AWS::ApiGatewayV2::Route":
        target = r["Properties"]["Target"]["Fn::Sub"]  # integrations/${XIntegration}
        routes[r["Properties"]["RouteKey"]] = function_of[target.split("${")[1].rstrip("}")]
expected = {
    "GET /lti/login": "LoginFunction",
    "POST /lti/login": "LoginFunction",
    "POST /lti/launch": "LaunchFunction",
    "GET /.well-known/jwks.json": "JwksFunction",
    "GET /lti/jwks": "JwksFunction",
    "GET /lti/config": "ServicesFunction",
    "GET /lti/config/canvas.json": "ServicesFunction",  # public, never IAM-authorized
    "GET /lti/register": "ServicesFunction",
    "POST /lti/deep-link": "ServicesFunction",
    "ANY /lti/ags/{proxy+}": "ServicesFunction",
    "ANY /lti/nrps/{proxy+}": "ServicesFunction",
    "ANY /lti/services/{proxy+}": "ServicesFunction",
    "ANY /admin/{proxy+}": "ServicesFunction",  # /admin/platforms, /admin/service-keys[/{id}]
    "ANY /services/{proxy+}": "ServicesFunction",
}
if routes != expected:
    missing = {k: v for k, v in expected.items() if routes.get(k) != v}
    extra = {k: v for k, v in routes.items() if k not in expected}
    sys.exit(f"routes differ from the expected table: wrong or missing {missing}, unexpected {extra}")
print(f"ok: {len(routes)} routes")
PY

if [[ "$BUILD" == 1 ]]; then
  section "sam build"
  # The project's test setup installs cargo-lambda (with zig) into .tools/venv.
  if [[ -d "$ROOT/.tools/venv/bin" ]]; then
    export PATH="$ROOT/.tools/venv/bin:$PATH"
  fi
  command -v cargo >/dev/null || { echo "cargo not found on PATH" >&2; exit 1; }
  command -v cargo-lambda >/dev/null || {
    echo "cargo-lambda not found: pip install cargo-lambda into .tools/venv" >&2
    exit 1
  }
  # For each function SAM runs, in the workspace root (CodeUri: .),
  #   cargo lambda build --release --arm64 --bin <BuildProperties.Binary>
  # with CARGO_TARGET_DIR set to the workspace target dir (so dependencies compile once
  # for all four), then copies target/lambda/<bin>/bootstrap to .aws-sam/build/<Fn>/.
  # cargo-lambda cross-compiles with zig and adds the aarch64-unknown-linux-gnu
  # rust-std through rustup if it is missing. SAM_BUILD_MODE=debug drops --release.
  "$VENV/bin/sam" build --template-file "$TEMPLATE"
  ls -l "$ROOT"/.aws-sam/build/*/bootstrap
fi

section "done in $((SECONDS - START)) s"
