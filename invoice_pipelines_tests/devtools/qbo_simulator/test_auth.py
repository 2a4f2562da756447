"""Intuit OAuth as the simulator plays it: discovery, refresh with rotation and a grace period for
the previous refresh token, expiry, revocation, bad clients, the authorization-code flow, and the
401 body with QBO's lower-case keys."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from invoice_pipelines_devtools.qbo_simulator.wire import loads


def _refresh(sim, company, refresh_token, secret=None):
    return httpx.post(
        sim.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(company.client_id, secret or company.client_secret),
        headers={"Accept": "application/json"},
    )


def test_discovery_names_the_endpoints(sim):
    doc = httpx.get(sim.discovery_url).json()
    assert doc["token_endpoint"] == sim.token_url
    assert doc["revocation_endpoint"].startswith(sim.base_url)
    for key in ("issuer", "authorization_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert doc[key]


def test_refresh_rotates_and_the_old_token_works_only_for_the_grace_period(qbo, sim):
    company = qbo.company
    first = _refresh(sim, company, company.refresh_token)
    body = first.json()
    assert first.status_code == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["x_refresh_token_expires_in"] == 100 * 86400
    assert body["refresh_token"] != company.refresh_token  # rotated
    qbo.token = body["access_token"]
    assert qbo.get(f"companyinfo/{qbo.realm}").status_code == 200

    sim.advance(23 * 3600)
    assert _refresh(sim, company, company.refresh_token).status_code == 200  # still in grace
    sim.advance(2 * 3600)
    stale = _refresh(sim, company, company.refresh_token)
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    assert _refresh(sim, company, body["refresh_token"]).status_code == 200


def test_two_refreshes_at_once_both_succeed_within_grace_unless_grace_is_zero(qbo, sim):
    company = qbo.company
    a = _refresh(sim, company, company.refresh_token)
    b = _refresh(sim, company, company.refresh_token)
    assert a.status_code == b.status_code == 200
    sim.configure(refresh_grace=0)
    c = _refresh(sim, company, a.json()["refresh_token"])
    sim.advance(1)
    d = _refresh(sim, company, a.json()["refresh_token"])
    assert c.status_code == 200 and d.status_code == 400


def test_refresh_token_idle_expiry_and_bad_client(qbo, sim):
    company = qbo.company
    bad = _refresh(sim, company, company.refresh_token, secret="wrong")
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    sim.advance(100 * 86400 + 1)
    expired = _refresh(sim, company, company.refresh_token)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_an_expired_access_token_gets_401_with_lower_case_fault_keys(qbo, sim):
    assert qbo.get(f"companyinfo/{qbo.realm}").status_code == 200
    sim.advance(3600)
    response = qbo.get(f"companyinfo/{qbo.realm}")
    assert response.status_code == 401
    fault = loads(response.content)["fault"]
    assert fault["type"] == "AUTHENTICATION"
    assert fault["error"][0]["code"] == "3200"
    assert "errorCode=003200" in fault["error"][0]["message"]
    xml = qbo.get(f"companyinfo/{qbo.realm}", accept="application/xml")
    assert xml.status_code == 401 and b'<Error code="3200">' in xml.content


def test_revoking_ends_the_refresh_token_and_its_access_tokens(qbo, sim):
    company = qbo.company
    revoked = httpx.post(
        f"{sim.base_url}/oauth2/v1/tokens/revoke",
        json={"token": company.refresh_token},
        auth=(company.client_id, company.client_secret),
    )
    assert revoked.status_code == 200
    assert _refresh(sim, company, company.refresh_token).json()["error"] == "invalid_grant"
    assert qbo.get(f"companyinfo/{qbo.realm}").status_code == 401


def test_a_token_of_one_company_does_not_open_another(qbo, sim):
    other = sim.create_company(realm_id="9130350000000002")
    response = qbo.http.get(
        f"{sim.base_url}/v3/company/{other.realm_id}/companyinfo/{other.realm_id}",
        headers=qbo.headers(),
    )
    assert response.status_code == 403


def test_authorization_code_flow(sim):
    company = sim.create_company(realm_id="4620816365000000000")
    consent = httpx.get(
        f"{sim.base_url}/connect/oauth2",
        params={
            "client_id": company.client_id,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": "http://127.0.0.1:9/callback",
            "state": "s1",
        },
    )
    assert consent.status_code == 302
    back = parse_qs(urlsplit(consent.headers["Location"]).query)
    assert back["state"] == ["s1"] and back["realmId"] == [company.realm_id]
    form = {
        "grant_type": "authorization_code",
        "code": back["code"][0],
        "redirect_uri": "http://127.0.0.1:9/callback",
    }
    auth = (company.client_id, company.client_secret)
    tokens = httpx.post(sim.token_url, data=form, auth=auth)
    assert tokens.status_code == 200 and tokens.json()["refresh_token"]
    assert httpx.post(sim.token_url, data=form, auth=auth).json()["error"] == "invalid_grant"
