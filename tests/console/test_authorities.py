"""Private CAs and the certificate-request queue in the browser."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from tests.console.conftest import go, screenshot, sign_in
from tests.factories import ec_key


def test_create_root_issue_revoke_and_the_crl_shows_the_serial(service, watched):
    page = watched.page
    sign_in(page, service, project="pki")
    go(page, "#/cas")
    form = page.locator("#ca-form")
    form.get_by_label("Common name").fill("Console Root CA")
    form.get_by_label("Key algorithm").select_option("EC256")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#ca-name")
    assert page.locator("#ca-name").text_content() == "Console Root CA"
    page.locator("#crl").get_by_text("No certificate is revoked.").wait_for()

    issue = page.locator("#issue-form")
    issue.get_by_label("Common name").fill("api.internal.example")
    issue.get_by_label("DNS names").fill("api.internal.example")
    issue.locator("button[type=submit]").click()
    page.locator("#issued").get_by_role("cell", name="api.internal.example", exact=True).wait_for()
    serial = page.locator("#issued code.serial").first.text_content()
    status, listed = service.call("GET", "/v1/private-certificates", service.token("pki"))
    assert status == 200
    assert [c["serial_number"] for c in listed["certificates"]] == [serial]

    page.get_by_role("button", name="Revoke api.internal.example").click()
    page.locator("#crl code.serial").filter(has_text=serial).wait_for()
    assert page.locator("#crl tbody tr").count() == 1
    assert page.locator("#issued").get_by_text("REVOKED").count() == 1
    screenshot(page, "private-ca")

    # disable and enable again, through the API's own routes
    ca_id = page.url.rsplit("/", 1)[-1]
    page.locator("#ca-actions").get_by_role("button", name="Disable").click()
    page.locator("#ca-actions").get_by_role("button", name="Enable").wait_for()
    assert page.locator("h1 .badge").text_content() == "DISABLED"
    assert page.locator("#issue-form").count() == 0  # a disabled CA cannot issue: no form offered
    _, shown = service.call("GET", f"/v1/private-certificate-authorities/{ca_id}", service.token("pki"))
    assert shown["status"] == "DISABLED"
    page.locator("#ca-actions").get_by_role("button", name="Enable").click()
    page.locator("#ca-actions").get_by_role("button", name="Disable").wait_for()
    assert page.locator("h1 .badge").text_content() == "ACTIVED"

    go(page, "#/cas")
    assert page.locator("#ca-tree").get_by_role("link", name="Console Root CA").count() == 1
    screenshot(page, "private-cas")
    assert not watched.errors and not watched.dialogs


def _csr(cn: str, slot: int = 11) -> str:
    key = ec_key(slot=slot)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_a_csr_submitted_through_the_api_is_signed_in_the_console_and_its_chain_shown(service, watched):
    page = watched.page
    admin = service.token("review")
    status, created = service.call(
        "POST",
        "/v1/private-certificate-authorities",
        admin,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Review Root"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 5},
        },
    )
    assert status == 200, created
    status, submitted = service.call(
        "POST", "/api/v1/certificate_requests", service.token("review", "editor"), {"csr": _csr("device7.example.net")}
    )
    assert status == 201, submitted

    sign_in(page, service, project="review")
    go(page, "#/requests")
    row = page.locator("tbody tr").filter(has_text="device7.example.net")
    names = row.locator(".csr-names").text_content()
    assert names == "CN=device7.example.net; DNS:device7.example.net"  # subject (the service's parser), SANs
    assert "EC 256" in row.text_content()  # the CSR's key
    row.get_by_role("combobox").select_option(created["ca_id"])
    row.get_by_role("button", name="Sign").click()
    # signed requests leave the Outstanding view; the Active view shows the chain as a path
    page.locator(".page").get_by_text("No request in this state.").wait_for()
    page.get_by_label("Status").select_option("Active")
    chain = page.locator("ol.chain").first
    chain.wait_for()
    items = chain.locator("li").all_text_contents()
    assert items[0].startswith("CN=device7.example.net") and items[-1].startswith("CN=Review Root")
    screenshot(page, "requests")

    # a second CSR is rejected
    status, second = service.call(
        "POST",
        "/api/v1/certificate_requests",
        service.token("review", "editor"),
        {"csr": _csr("device8.example.net", 12)},
    )
    assert status == 201, second
    page.get_by_label("Status").select_option("Outstanding")
    row = page.locator("tbody tr").filter(has_text="device8.example.net")
    row.get_by_role("button", name="Reject").click()
    page.locator(".page").get_by_text("No request in this state.").wait_for()
    status, req = service.call("GET", f"/api/v1/certificate_requests/{second['result']['id']}", admin)
    assert req["result"]["status"] == "Rejected"
    status, req = service.call("GET", f"/api/v1/certificate_requests/{submitted['result']['id']}", admin)
    assert req["result"]["status"] == "Active" and req["result"]["certificate_authority_id"] == created["ca_id"]
    assert not watched.errors and not watched.dialogs
