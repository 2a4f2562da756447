"""The scenario groups through node-quickbooks and intuit-oauth from npm (installed by `make test`
in node/), played by node/driver.js in one Node process per group: the world goes in as JSON on
stdin, the report comes back as JSON on stdout."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from invoice_pipelines_tests.conftest import IN_CI
from invoice_pipelines_tests.quickbooks.conformance.scenarios import DOCUMENT, Scenarios

NODE_DIR = Path(__file__).resolve().parent / "node"


def require_node_packages() -> None:
    """Node and the npm packages: missing ones fail under CI (make test installs them) and skip
    elsewhere with the reason."""
    if shutil.which("node") is None:
        message = "node missing; run scripts/ensure-node-packages.sh (make test does)"
    elif not (NODE_DIR / "node_modules" / "node-quickbooks").is_dir():
        message = f"{NODE_DIR}/node_modules missing; run scripts/ensure-node-packages.sh"
    else:
        return
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class NodeQuickBooks(Scenarios):
    name = "node-quickbooks"

    def run(self, group: str) -> dict:
        require_node_packages()
        sim, company = self.sim, self.company
        world = {
            "api_base": f"{sim.api_url}/company/",
            "token_url": sim.token_url,
            "revoke_url": sim.revoke_url,
            "authorize_url": sim.authorization_url,
            "userinfo_url": f"{sim.base_url}/v1/openid_connect/userinfo",
            "control_url": f"{sim.base_url}/_sim",
            "realm_id": company.realm_id,
            "client_id": company.client_id,
            "client_secret": company.client_secret,
            "access_token": company.access_token,
            "refresh_token": company.refresh_token,
            "since_ms": int((sim.now() - 60) * 1000),
            "document_b64": base64.b64encode(DOCUMENT).decode("ascii"),
        }
        # node-quickbooks formats changedSince in the process's zone and leaves a "+" unencoded,
        # which QBO reads as a space (ruckus/quickeebooks#87): a US zone, as its users have
        env = {**os.environ, "TZ": "America/Los_Angeles"}
        done = subprocess.run(
            ["node", "driver.js", group],
            input=json.dumps(world),
            capture_output=True,
            text=True,
            cwd=NODE_DIR,
            env=env,
            timeout=120,
        )
        if done.returncode != 0:
            pytest.fail(f"node driver.js {group} failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout, parse_float=Decimal)
