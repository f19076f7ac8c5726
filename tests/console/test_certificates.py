"""Certificates in the browser: upload, list, overview, bind, unbind, delete refused while bound, delete."""

from __future__ import annotations

import datetime as dt

from tests.console.conftest import go, screenshot, sign_in
from tests.factories import CertSpec, ec_key, issue, rsa_chain


def test_upload_list_overview_bind_unbind_delete(service, watched):
    page = watched.page
    chain = rsa_chain()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=5)
    leaf = issue(
        CertSpec(cn="shop.example.com", dns=("shop.example.com",), not_after=soon), ec_key(slot=7), chain.intermediate
    )
    sign_in(page, service, project="upload")
    go(page, "#/certificates")
    form = page.locator("#upload-form")
    form.get_by_label("Name", exact=True).fill("shop_cert")
    form.get_by_label("Certificate chain", exact=False).fill(leaf.pem + chain.intermediate.pem)
    # the wrong key first: the service's APIG code is shown next to the key field, nothing is stored
    form.get_by_label("Private key (PEM)").fill(chain.leaf.key_pem())
    form.locator("button[type=submit]").click()
    key_row = form.locator(".field").filter(has=page.get_by_label("Private key (PEM)"))
    key_row.locator(".field-error").get_by_text("APIG.2101").wait_for()
    status, listed = service.call("GET", "/v2/upload/apic/certificates", service.token("upload"))
    assert status == 200 and listed["total"] == 0

    form.get_by_label("Private key (PEM)").fill(leaf.key_pem())
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#cert-name")
    assert page.locator("#cert-name").text_content() == "shop_cert"
    assert page.locator("#cert-cn").text_content() == "shop.example.com"
    screenshot(page, "certificate")

    go(page, "#/certificates")
    assert page.locator("#cert-list tbody tr").count() == 1
    assert "shop_cert" in page.locator("#cert-list").text_content()

    go(page, "#/overview")
    expiring = page.locator("#expiring")
    assert "shop_cert" in expiring.text_content()
    assert "Within 7 days: 1" in expiring.text_content()

    page.get_by_role("link", name="shop_cert").click()
    page.wait_for_selector("#bind-form")
    page.locator("#bind-form").get_by_label("Domain").fill("shop.example.com")
    page.locator("#bind-form button[type=submit]").click()
    page.locator("#domains").get_by_role("cell", name="shop.example.com", exact=True).wait_for()

    # update: a full replacement (with If-Match); the binding stays
    update = page.locator("#update-form")
    update.get_by_label("Name", exact=True).fill("shop_cert_v2")
    update.get_by_label("Certificate chain", exact=False).fill(leaf.pem + chain.intermediate.pem)
    update.get_by_label("Private key (PEM)").fill(leaf.key_pem())
    update.locator("button[type=submit]").click()
    page.locator("#cert-name").get_by_text("shop_cert_v2").wait_for()
    page.locator("#domains").get_by_role("cell", name="shop.example.com", exact=True).wait_for()

    # delete is refused while bound, with the service's reason
    page.click("#delete-button")
    page.locator("#delete-error").get_by_text("APIG.3461").wait_for()
    status, listed = service.call("GET", "/v2/upload/apic/certificates?name=shop_cert_v2", service.token("upload"))
    assert status == 200 and listed["total"] == 1

    page.get_by_role("button", name="Unbind shop.example.com").click()
    page.locator("#domains").get_by_text("No domain is bound.").wait_for()
    page.click("#delete-button")
    page.wait_for_selector("#cert-list")
    page.locator("#cert-list").get_by_text("No certificate matches.").wait_for()
    status, listed = service.call("GET", "/v2/upload/apic/certificates", service.token("upload"))
    assert listed["total"] == 0
    assert not watched.errors and not watched.dialogs
