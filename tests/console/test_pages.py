"""Every page of the console with data on it: axe-core finds no serious or critical accessibility violation,
nothing is fetched from another origin, and (with GATEWAYCERTS_CONSOLE_SCREENSHOTS=docs/console) each page's
screenshot is written for docs/console.md."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.console.conftest import go, screenshot, sign_in
from tests.console.test_authorities import _csr
from tests.factories import CertSpec, ec_key, issue, rsa_chain

PROJECT = "tour"


@pytest.fixture(scope="module")
def tour(service):
    """A project with something on every page: certificates expiring soon and later (one bound), a CA
    hierarchy with an issued and a revoked certificate, an outstanding CSR, an order, their audit trail."""
    admin = service.token(PROJECT)
    chain = rsa_chain()
    now = dt.datetime.now(dt.UTC)
    ids = []
    for slot, (name, cn, days) in enumerate(
        [
            ("shop_cert", "shop.example.com", 5),
            ("api_cert", "api.example.com", 20),
            ("portal_cert", "portal.example.com", 200),
        ]
    ):
        leaf = issue(
            CertSpec(cn=cn, dns=(cn,), not_after=now + dt.timedelta(days=days)),
            ec_key(slot=20 + slot),
            chain.intermediate,
        )
        status, cert = service.call(
            "POST",
            f"/v2/{PROJECT}/apic/certificates",
            admin,
            {"name": name, "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()},
        )
        assert status == 200, cert
        ids.append(cert["id"])
    status, _ = service.call(
        "POST",
        f"/v2/{PROJECT}/apic/certificates/{ids[0]}/domains/attach",
        admin,
        {"domains": [{"domain": "shop.example.com"}]},
    )
    assert status == 204
    ca_body = {
        "distinguished_name": {"common_name": "Tour Root CA"},
        "key_algorithm": "EC256",
        "validity": {"type": "YEAR", "value": 5},
    }
    status, root = service.call(
        "POST",
        "/v1/private-certificate-authorities",
        admin,
        {"type": "ROOT", **ca_body, "crl_configuration": {"enabled": True}},
    )
    assert status == 200, root
    sub_body = {
        **ca_body,
        "distinguished_name": {"common_name": "Tour Issuing CA"},
        "validity": {"type": "YEAR", "value": 2},
    }
    status, sub = service.call(
        "POST",
        "/v1/private-certificate-authorities",
        admin,
        {"type": "SUBORDINATE", "issuer_id": root["ca_id"], **sub_body, "crl_configuration": {"enabled": True}},
    )
    assert status == 200, sub
    issued = []
    for cn in ("svc-a.internal", "svc-b.internal"):
        status, cert = service.call(
            "POST",
            "/v1/private-certificates",
            admin,
            {
                "issuer_id": sub["ca_id"],
                "distinguished_name": {"common_name": cn},
                "validity": {"type": "DAY", "value": 90},
            },
        )
        assert status == 200, cert
        issued.append(cert["certificate_id"])
    status, _ = service.call(
        "POST", f"/v1/private-certificates/{issued[1]}/revoke", admin, {"reason": "KEY_COMPROMISE"}
    )
    assert status == 204
    status, _ = service.call("POST", "/api/v1/certificate_requests", admin, {"csr": _csr("device9.example.net")})
    assert status == 201
    status, order = service.call(
        "POST",
        "/v1/orders",
        admin,
        {"type": "key", "meta": {"algorithm": "aes", "bit_length": 256, "name": "session-key"}},
    )
    assert status == 202, order
    return {"cert": ids[0], "ca": sub["ca_id"]}


def _pages(tour) -> list[tuple[str, str]]:
    return [
        ("overview", "#/overview"),
        ("certificates", "#/certificates"),
        ("certificate", f"#/certificates/{tour['cert']}"),
        ("private-cas", "#/cas"),
        ("private-ca", f"#/cas/{tour['ca']}"),
        ("requests", "#/requests"),
        ("orders", "#/orders"),
        ("audit", "#/audit"),
    ]


def _axe(page, axe_source: str) -> list[dict]:
    # Injected through the DevTools protocol: the page's CSP (script-src 'self') stays in force for the page.
    page.evaluate(axe_source + "\n;true")
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_or_critical_violation_on_any_page(service, watched, tour, axe_source):
    page = watched.page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(service.url + "/console/")
    page.wait_for_selector("#demo-sign-in")
    assert _axe(page, axe_source) == [], "sign-in"
    screenshot(page, "sign-in")
    sign_in(page, service, project=PROJECT)
    found = {}
    for name, route in _pages(tour):
        go(page, route)
        if name == "orders":
            page.locator("#orders tbody tr").first.wait_for()
        text = page.locator("main").inner_text()
        assert "null" not in text and "undefined" not in text and "[object" not in text, name
        found[name] = _axe(page, axe_source)
        screenshot(page, name)
    assert found == {name: [] for name, _ in _pages(tour)}
    assert requests and all(url.startswith(service.url + "/") for url in requests), {
        u for u in requests if not u.startswith(service.url)
    }
    assert not watched.errors and not watched.dialogs


def test_every_page_shows_its_data(service, watched, tour):
    page = watched.page
    sign_in(page, service, project=PROJECT)
    go(page, "#/overview")
    assert page.locator("#expiry-chart rect.bar").count() == 54  # the expired bar and 53 weeks
    assert "Within 7 days: 1" in page.locator("#expiring").text_content()
    assert (
        "shop.example.com" in page.locator("#expiring").get_by_role("row").filter(has_text="shop_cert").text_content()
    )
    assert "CSRs waiting for review: 1" in page.locator("#waiting").text_content()
    rows = page.locator("#by-source tbody tr").all()
    counts = {r.locator("td").nth(0).text_content(): r.locator("td").nth(1).text_content() for r in rows}
    assert counts == {"APIC (uploaded)": "3", "private CA (CCM)": "1", "Notary (signed requests)": "0"}
    go(page, f"#/cas/{tour['ca']}")
    assert page.locator("#crl tbody tr").count() == 1
    assert "Tour Root CA" in page.locator("main dl").first.text_content()
    go(page, "#/audit")
    page.locator("#audit-filters").get_by_label("Resource type").select_option("private_ca")
    page.locator("#audit-filters button[type=submit]").click()
    page.locator("#audit-list").get_by_text("Events, newest first (2)").wait_for()
