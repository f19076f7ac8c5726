"""docs/gateways.md is the configuration the real-gateway tests run: its Caddy and Traefik blocks exist, render
with the tests' values (every example value the tests replace is in the text), and say what the tests rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.e2e import gateway_harness as gw


def test_the_caddyfile_is_the_one_the_tests_run(tmp_path: Path):
    text = gw.caddyfile("127.0.0.1:9999", 12345, tmp_path)
    assert "127.0.0.1:9999/gateway/v1/demo/instances/inst-1/caddy?key={$GATEWAYCERTS_GATEWAY_KEY}" in text
    assert ":12345 {" in text and f"storage file_system {tmp_path}" in text
    assert "admin off" in text and "auto_https off" in text
    assert "gk_" not in text  # the key comes from the environment, not the file


def test_the_traefik_files_are_the_ones_the_tests_run(tmp_path: Path):
    static, dynamic = gw.traefik_files(
        "127.0.0.1:9999", 12345, "gk_id_secret", tmp_path / "routes.yml", mtls_host="m.test", mtls_cert="c1"
    )
    config = yaml.safe_load(static)
    http = config["providers"]["http"]
    assert http["endpoint"] == "http://127.0.0.1:9999/gateway/v1/demo/instances/inst-1/traefik"
    assert http["pollInterval"] == "1s" and http["headers"] == {"Authorization": "Bearer gk_id_secret"}
    assert config["entryPoints"]["websecure"]["address"] == "127.0.0.1:12345"
    assert config["providers"]["file"]["filename"] == str(tmp_path / "routes.yml")
    routes = yaml.safe_load(dynamic)
    assert routes["http"]["routers"]["mtls-example"]["tls"]["options"] == "gc-mtls-c1@http"
    assert routes["http"]["routers"]["mtls-example"]["rule"] == "Host(`m.test`)"
    assert routes["tls"]["options"]["default"]["sniStrict"] is True
