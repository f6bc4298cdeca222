"""moto's server with one request at a time: `moto_server.py HOST PORT`.

moto's own server handles requests on threads and its DynamoDB backend does not lock,
so two concurrent conditional writes to one item can both pass their condition. Real
DynamoDB applies the writes to an item one after another; serializing the requests
gives the same guarantee here. A read-then-write implementation would still race
(its read and its write are separate requests), so the replay race test keeps its
teeth.

With `LTI_MOTO_IAM=1` (tests/lib.sh `start_moto --iam`), IAM is enforced for every
request signed with an access key made through moto's IAM API, as AWS would for those
keys, and every decision is recorded; see `IamMode`. Without it nothing changes.
"""
import json
import os
import re
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

# The route of the IAM mode's decision record: GET answers it as a JSON array of
# {"principal", "action", "resource", "allowed"}, in request order.
DECISIONS_PATH = "/_lti/iam-decisions"


class IamMode:
    """moto's IAM enforcement (moto/iam/access_control.py), with the gaps our IAM test
    depends on filled:

    1. moto evaluates a DynamoDB or KMS request against the resource "*" (only services
       whose response class has `_determine_resource`, e.g. SQS, name a resource), so a
       statement whose Resource is a table or key ARN matches nothing. Here each request
       is evaluated against the ARN AWS would use: the table
       (`arn:aws:dynamodb:<region>:<account>:table/<name>`), `<table arn>/index/<name>`
       for a Query or Scan of an index, the key ARN for a KMS key named by id, ARN,
       alias or alias ARN.
    2. moto checks `dynamodb:TransactWriteItems`/`TransactGetItems` as actions. AWS has
       no such IAM actions: each item of a transaction is authorized by its own action
       (PutItem, UpdateItem, DeleteItem, ConditionCheckItem, GetItem) on its table.
       BatchGetItem and BatchWriteItem are IAM actions, authorized once per table named
       in RequestItems. Every check must pass.
    3. A denial is answered as DynamoDB and KMS answer it (HTTP 400, JSON
       `AccessDeniedException` naming the principal, action and resource), not in
       moto's XML shape, which the JSON-protocol SDK clients cannot read.
    4. The access key `LTI_MOTO_IAM_ROOT_KEY` (default `test`, the key the other suites
       use) is the account's root: never checked, so the test's admin identity can
       provision tables, keys and IAM users. moto's own INITIAL_NO_AUTH_ACTION_COUNT
       would count requests instead, which depends on how many the setup makes.

    Other services (IAM itself, STS) keep moto's evaluation.
    """

    def __init__(self) -> None:
        from moto import settings

        self.root_key = os.environ.get("LTI_MOTO_IAM_ROOT_KEY", "test")
        self.decisions: list[dict] = []
        # Enforced from the first request; the root key is let through below.
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0

    def install(self) -> None:
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.exceptions import AccessDeniedError, JsonRESTError
        from moto.dynamodb.responses import DynamoHandler
        from moto.iam.access_control import IAMRequest
        from moto.kms.responses import KmsResponse

        mode = self
        original = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

        class AccessDenied(JsonRESTError):
            code = 400

        def authorize(handler, resource: str = "*") -> None:
            credential = re.search(r"Credential=([^/,\s]+)/", handler.headers.get("Authorization", ""))
            if credential is not None and credential.group(1) == mode.root_key:
                return
            if isinstance(handler, DynamoHandler):
                checks = mode.dynamodb_checks(handler)
            elif isinstance(handler, KmsResponse):
                checks = mode.kms_checks(handler)
            else:
                return original(handler, resource)
            request = IAMRequest(
                account_id=handler.current_account,
                method=handler.method,
                path=handler.raw_path,
                data=handler.data,
                body=handler.raw_body,
                headers=handler.headers,
                action=handler._get_action(),
            )
            request.check_signature()
            principal = request._access_key.arn
            denied = None
            for action, arn in checks:
                request._action = action
                try:
                    request.check_action_permitted(arn)
                    allowed = True
                except AccessDeniedError:
                    allowed = False
                mode.decisions.append(
                    {"principal": principal, "action": action, "resource": arn, "allowed": allowed}
                )
                if not allowed and denied is None:
                    denied = (action, arn)
            if denied is not None:
                action, arn = denied
                raise AccessDenied(
                    "AccessDeniedException",
                    f"User: {principal} is not authorized to perform: {action} on resource: "
                    f"{arn} because no identity-based policy allows the {action} action",
                )

        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = authorize

    @staticmethod
    def dynamodb_checks(handler) -> list[tuple[str, str]]:
        body = handler.body if isinstance(handler.body, dict) else {}
        prefix = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/"
        operation = handler._get_action()
        if operation == "TransactWriteItems":
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            return [
                (f"dynamodb:{kinds[kind]}", prefix + part["TableName"])
                for item in body.get("TransactItems", [])
                for kind, part in item.items()
                if kind in kinds
            ]
        if operation == "TransactGetItems":
            return [
                ("dynamodb:GetItem", prefix + item["Get"]["TableName"])
                for item in body.get("TransactItems", [])
                if "Get" in item
            ]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", prefix + t) for t in body.get("RequestItems", {})]
        table = body.get("TableName")
        if table is None:
            return [(f"dynamodb:{operation}", "*")]
        arn = prefix + table
        if operation in ("Query", "Scan") and body.get("IndexName"):
            arn += "/index/" + body["IndexName"]
        return [(f"dynamodb:{operation}", arn)]

    @staticmethod
    def kms_checks(handler) -> list[tuple[str, str]]:
        from moto.kms.models import kms_backends

        operation = handler._get_action()
        key_id = json.loads(handler.body or "{}").get("KeyId")
        if key_id is None:
            return [(f"kms:{operation}", "*")]
        backend = kms_backends[handler.current_account][handler.region]
        try:
            key = backend.keys[backend.any_id_to_key_id(key_id)]
            arn = key.arn
        except Exception:  # an unknown key: moto answers NotFoundException after this
            arn = key_id
        return [(f"kms:{operation}", arn)]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    iam = IamMode() if os.environ.get("LTI_MOTO_IAM") == "1" else None
    if iam is not None:
        iam.install()
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            if iam is not None and environ.get("PATH_INFO") == DECISIONS_PATH:
                start_response("200 OK", [("content-type", "application/json")])
                return [json.dumps(iam.decisions).encode()]
            # moto answers with complete bodies, so the whole response is made here.
            return list(app(environ, start_response))

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
