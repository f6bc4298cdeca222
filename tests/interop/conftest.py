"""Shared fixtures: the interop platform and the pylti1p3 tool as subprocesses, and
our Rust dev server (already running; its URL comes from LTI_DEV_URL)."""
from __future__ import annotations

import os
import typing as t

import pytest
import requests

from servers import ServerProcess, free_port, start_platform, start_pylti_tool

CLIENT_ID = "interop-client-1"
DEPLOYMENT_ID = "interop-deployment-1"

# Set to 1 to run only the tests that need no dev server (test_self.py) without
# failing the others; they are skipped then, and only then.
SKIP_DEV_ENV = "LTI_INTEROP_SKIP_DEV"


class DevServer(t.NamedTuple):
    """Our tool's dev server (`cargo run -p lti-dev`), started by tests/run.sh."""

    url: str  # base URL, no trailing slash
    admin_token: str


@pytest.fixture(scope="session")
def dev() -> DevServer:
    """The dev server named by LTI_DEV_URL and LTI_DEV_ADMIN_TOKEN. Without them the
    tests that need it fail (they are the point of this suite), unless
    LTI_INTEROP_SKIP_DEV=1 says to leave them out."""
    url = os.environ.get("LTI_DEV_URL", "").strip().rstrip("/")
    token = os.environ.get("LTI_DEV_ADMIN_TOKEN", "").strip()
    if os.environ.get(SKIP_DEV_ENV) == "1":
        pytest.skip(f"{SKIP_DEV_ENV}=1: tests against our dev server left out")
    if not url or not token:
        pytest.fail(
            "LTI_DEV_URL and LTI_DEV_ADMIN_TOKEN must name a running dev server "
            "(`LTI_ADMIN_TOKEN=... cargo run -p lti-dev -- --port P` and its admin token; "
            f"tests/run.sh sets both). Set {SKIP_DEV_ENV}=1 to run only the self tests.",
            pytrace=False,
        )
    try:
        r = requests.get(f"{url}/.well-known/jwks.json", timeout=5)
    except requests.RequestException as exc:
        pytest.fail(f"LTI_DEV_URL={url} does not answer: {exc}", pytrace=False)
    if r.status_code != 200:
        pytest.fail(f"LTI_DEV_URL={url}: GET /.well-known/jwks.json answered {r.status_code}", pytrace=False)
    r = requests.get(f"{url}/admin/platforms", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    if r.status_code != 200:
        pytest.fail(f"LTI_DEV_ADMIN_TOKEN is not the dev server's admin token ({r.status_code} {r.text[:200]})",
                    pytrace=False)
    return DevServer(url, token)


def registration_body(config: t.Dict[str, t.Any], **overrides: t.Any) -> t.Dict[str, t.Any]:
    """Our tool's POST /admin/platforms body from a platform's /.config."""
    keys = ("issuer", "clientId", "name", "authLoginUrl", "authTokenUrl", "keysetUrl", "deploymentId")
    body = {k: config[k] for k in keys}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def register_platform(dev: DevServer, body: t.Dict[str, t.Any]) -> requests.Response:
    return requests.post(
        f"{dev.url}/admin/platforms",
        json=body,
        headers={"Authorization": f"Bearer {dev.admin_token}"},
        timeout=10,
    )


class DevPair(t.NamedTuple):
    platform: ServerProcess
    dev: DevServer
    config: t.Dict[str, t.Any]  # the platform's /.config
    registration: t.Dict[str, t.Any]  # what our admin API answered


@pytest.fixture(scope="session")
def platform_for_dev(dev: DevServer, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[DevPair]:
    """The interop platform launching into our tool, registered with our admin API."""
    port = free_port()
    platform = start_platform(
        port, dev.url, "--client-id", f"interop-{port}", "--deployment-id", DEPLOYMENT_ID,
        log_dir=tmp_path_factory.mktemp("dev-logs"),
    )
    try:
        platform.wait_ready()
        config = requests.get(f"{platform.url}/.config", timeout=5).json()
        r = register_platform(dev, registration_body(config))
        assert r.status_code == 201, r.text
        yield DevPair(platform, dev, config, r.json())
    finally:
        platform.stop()


class Pair(t.NamedTuple):
    platform: ServerProcess
    tool: ServerProcess
    config: t.Dict[str, t.Any]  # the platform's /.config


@pytest.fixture(scope="session")
def platform_and_pylti_tool(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Pair]:
    """Our interop platform launching into the pylti1p3 tool."""
    logs = tmp_path_factory.mktemp("logs")
    pport, tport = free_port(), free_port()
    platform_url, tool_url = f"http://127.0.0.1:{pport}", f"http://127.0.0.1:{tport}"
    platform = start_platform(
        pport, tool_url, "--client-id", CLIENT_ID, "--deployment-id", DEPLOYMENT_ID, log_dir=logs
    )
    tool = start_pylti_tool(
        tport,
        issuer=platform_url,
        client_id=CLIENT_ID,
        deployment_ids=[DEPLOYMENT_ID],
        auth_url=f"{platform_url}/auth",
        jwks_url=f"{platform_url}/.well-known/jwks.json",
        token_url=f"{platform_url}/token",
        log_dir=logs,
    )
    try:
        platform.wait_ready()
        tool.wait_ready()
        config = requests.get(f"{platform_url}/.config", timeout=5).json()
        yield Pair(platform, tool, config)
    finally:
        tool.stop()
        platform.stop()
