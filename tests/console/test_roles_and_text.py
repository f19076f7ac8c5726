"""Role-aware pages and attacker-controlled text: a viewer sees no write control and its forged writes are
refused by the API; a certificate named like markup renders as text and runs nothing."""

from __future__ import annotations

import pytest

from tests.console.conftest import go, sign_in
from tests.factories import CertSpec, ec_key, issue, rsa_chain

MARKUP = "<img src=x onerror=alert(1)>"
# Buttons that change nothing: paging, filtering, signing out.
READ_ONLY_BUTTONS = {"Filter", "Previous", "Next", "Sign out", "Older events"}


def _upload(service, project: str, name: str, cn: str) -> str:
    chain = rsa_chain()
    leaf = issue(CertSpec(cn=cn, dns=("markup.example.com",)), ec_key(slot=9), chain.intermediate)
    status, cert = service.call(
        "POST",
        f"/v2/{project}/apic/certificates",
        service.token(project),
        {"name": name, "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()},
    )
    assert status == 200, cert
    return cert["id"]


@pytest.fixture(scope="module")
def viewer_project(service):
    project = "readonly"
    cert_id = _upload(service, project, "viewed_cert", "viewed.example.com")
    status, ca = service.call(
        "POST",
        "/v1/private-certificate-authorities",
        service.token(project),
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Viewer Root"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 2},
        },
    )
    assert status == 200, ca
    return project, cert_id, ca["ca_id"]


def test_a_viewer_sees_no_write_controls(service, watched, viewer_project):
    project, cert_id, ca_id = viewer_project
    page = watched.page
    sign_in(page, service, project=project, role="viewer")
    assert page.locator("#roles").text_content() == "viewer"
    for route in (
        "#/overview",
        "#/certificates",
        f"#/certificates/{cert_id}",
        "#/cas",
        f"#/cas/{ca_id}",
        "#/requests",
        "#/orders",
        "#/audit",
    ):
        go(page, route)
        buttons = {b.strip() for b in page.locator("main button").all_text_contents()}
        assert buttons <= READ_ONLY_BUTTONS, (route, buttons - READ_ONLY_BUTTONS)
        assert page.locator("main textarea").count() == 0, route
    go(page, f"#/certificates/{cert_id}")
    assert page.locator("#cert-name").text_content() == "viewed_cert"  # the viewer does read
    assert not watched.errors and not watched.dialogs


def test_a_forged_write_with_a_viewers_token_is_refused(service, watched, viewer_project):
    project, cert_id, ca_id = viewer_project
    page = watched.page
    sign_in(page, service, project=project, role="viewer")
    token = service.token(project, "viewer")
    forged = page.evaluate(
        """async ([token, project, certId, caId]) => {
            const send = (method, path, body) => fetch(path, {method, headers: {"X-Auth-Token": token,
                "Content-Type": "application/json"}, body: body && JSON.stringify(body)})
                .then(async (r) => [r.status, await r.json().catch(() => null)]);
            return [
                await send("DELETE", `/v2/${project}/apic/certificates/${certId}`),
                await send("POST", `/v2/${project}/apic/certificates/${certId}/domains/attach`,
                           {domains: [{domain: "markup.example.com"}]}),
                await send("POST", `/v1/private-certificate-authorities/${caId}/disable`),
                await send("POST", "/v1/private-certificates", {issuer_id: caId,
                           distinguished_name: {common_name: "x.example.com"}, validity: {type: "DAY", value: 1}}),
            ];
        }""",
        [token, project, cert_id, ca_id],
    )
    assert [status for status, _ in forged] == [403, 403, 403, 403], forged
    assert forged[0][1]["error_code"] == "APIG.1005" and forged[2][1]["error_code"] == "PCA.1003"
    status, cert = service.call("GET", f"/v2/{project}/apic/certificates/{cert_id}/attached-domains", token)
    assert status == 200 and cert["total"] == 0
    status, ca = service.call("GET", f"/v1/private-certificate-authorities/{ca_id}", token)
    assert ca["status"] == "ACTIVED"


def test_a_common_name_written_as_markup_renders_as_text_and_runs_nothing(service, watched):
    project = "markup"
    cert_id = _upload(service, project, "markup_cert", MARKUP)
    page = watched.page
    sign_in(page, service, project=project)
    for route in ("#/overview", "#/certificates", f"#/certificates/{cert_id}", "#/audit"):
        go(page, route)
        assert page.locator("img").count() == 0, route
        if route != "#/overview":  # the overview names only what expires soon
            assert page.locator("main").get_by_text(MARKUP).count() >= 1, route
    go(page, f"#/certificates/{cert_id}")
    assert page.locator("#cert-cn").text_content() == MARKUP
    assert watched.dialogs == [] and watched.errors == []
