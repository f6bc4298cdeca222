"""Shared fixtures: the interop platform and the pylti1p3 tool as subprocesses."""
from __future__ import annotations

import typing as t

import pytest
import requests

from servers import ServerProcess, free_port, start_platform, start_pylti_tool

CLIENT_ID = "interop-client-1"
DEPLOYMENT_ID = "interop-deployment-1"


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
