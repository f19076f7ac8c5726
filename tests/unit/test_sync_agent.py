"""The sync agent's pure parts and its file handling: snapshot checks, NGINX/HAProxy layouts, atomic writes,
argument parsing, and the fetch loop against a stand-in HTTP answerer (the real service: tests/e2e/test_sync_*)."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from gatewaycerts.agent.bundle import BundleError, parse_bundle
from gatewaycerts.agent.files import MANIFEST, apply_layout, prepare_directory, read_manifest
from gatewaycerts.agent.layout import haproxy_layout, nginx_layout, nginx_server_name, serving_pairs
from gatewaycerts.agent.sync import Agent, FetchError, UsageError, main, parse_options
from tests.factories import ec_chain, rsa_chain

RSA = rsa_chain()
EC = ec_chain()
DIR = PurePosixPath("/srv/gc")


def item(cid: str, domains: list[str], algorithm: str = "RSA", verify: bool = False, **extra) -> dict:
    chain = EC if algorithm == "ECC" else RSA
    return {
        "certificate_id": cid,
        "revision": "1",
        "domains": domains,
        "algorithm": algorithm,
        "chain_pem": chain.bundle(),
        "key_pem": chain.leaf.key_pem(),
        "trusted_root_ca": chain.root.pem if verify else None,
        "verify_client": verify,
        "not_after": "2030-01-01T00:00:00Z",
        "sha256_fingerprint": "00",
        **extra,
    }


def snapshot(*items: dict, version: str = "v1") -> dict:
    return {"version": version, "items": list(items)}


# --- the snapshot ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        pytest.param({"certificate_id": "../etc"}, "certificate_id", id="id with a path"),
        pytest.param({"domains": ["a.com;\n include /etc/passwd"]}, "domain", id="name breaking out of a line"),
        pytest.param({"domains": ["A.COM"]}, "domain", id="upper-case name"),
        pytest.param({"domains": ["*.*.a.com"]}, "domain", id="two wildcard labels"),
        pytest.param({"domains": "a.com"}, "domains", id="domains not a list"),
        pytest.param({"key_pem": "not a key but a secret"}, "key_pem", id="key not PEM"),
        pytest.param({"chain_pem": ""}, "chain_pem", id="empty chain"),
        pytest.param({"verify_client": True, "trusted_root_ca": None}, "trusted_root_ca", id="verify without root"),
        pytest.param({"verify_client": "yes"}, "verify_client", id="verify not a boolean"),
    ],
)
def test_a_bad_snapshot_is_refused_whole_and_never_quotes_a_key(bad: dict, says: str):
    with pytest.raises(BundleError) as caught:
        parse_bundle(snapshot(item("good", ["ok.example.com"]), {**item("c2", ["b.example.com"]), **bad}))
    assert says in str(caught.value)
    assert "secret" not in str(caught.value) and "PRIVATE" not in str(caught.value)


def test_ip_literals_are_dropped_since_no_sni_carries_them():
    bundle = parse_bundle(snapshot(item("a", ["10.0.0.1", "2001:db8::1", "a.com"]), item("b", ["192.0.2.1"])))
    assert [i.domains for i in bundle.items] == [("a.com",), ()]
    assert "b.crt" not in nginx_layout(bundle, DIR, ["8443"])


def test_a_snapshot_without_version_or_with_a_repeated_id_is_refused():
    with pytest.raises(BundleError, match="version"):
        parse_bundle({"items": []})
    with pytest.raises(BundleError, match="twice"):
        parse_bundle(snapshot(item("a", ["a.com"]), item("a", ["b.com"])))


# --- layouts --------------------------------------------------------------------------------------------------


def test_nginx_wildcard_is_a_regex_covering_exactly_one_label():
    assert nginx_server_name("www.example.com") == "www.example.com"
    pattern = nginx_server_name("*.api.example-1.com")
    assert pattern.startswith('"~') and pattern.endswith('"')
    regex = re.compile(pattern[2:-1])
    assert regex.match("x.api.example-1.com")
    assert not regex.match("a.b.api.example-1.com")
    assert not regex.match("api.example-1.com")
    assert not regex.match("xapi.example-1.com")


def test_nginx_layout_serves_rsa_and_ecc_side_by_side_and_verifies_clients():
    bundle = parse_bundle(
        snapshot(
            item("r1", ["www.example.com", "*.api.example.com"], verify=True),
            item("e1", ["www.example.com"], "ECC"),
            item("r2", ["other.example.com"]),
        )
    )
    files = nginx_layout(bundle, DIR, ["127.0.0.1:8443", "[::1]:8443"], "/etc/nginx/gc-locations.conf")
    assert set(files) == {
        "r1.crt",
        "keys/r1.key",
        "r1.ca.crt",
        "e1.crt",
        "keys/e1.key",
        "r2.crt",
        "keys/r2.key",
        "gatewaycerts.conf",
    }
    assert files["keys/r1.key"].mode == 0o600 and files["r1.crt"].mode == 0o644
    assert files["keys/r1.key"].content.decode() == RSA.leaf.key_pem().strip() + "\n"
    conf = files["gatewaycerts.conf"].content.decode()
    blocks = conf.split("server {\n")[1:]
    default = blocks[0]
    assert "listen 127.0.0.1:8443 ssl default_server;" in default and "ssl_reject_handshake on;" in default
    assert "listen [::1]:8443 ssl default_server;" in default
    www = next(b for b in blocks if "server_name www.example.com;" in b)
    assert www.index('ssl_certificate "/srv/gc/r1.crt";') < www.index('ssl_certificate_key "/srv/gc/keys/r1.key";')
    assert 'ssl_certificate "/srv/gc/e1.crt";' in www and 'ssl_certificate_key "/srv/gc/keys/e1.key";' in www
    assert 'ssl_client_certificate "/srv/gc/r1.ca.crt";' in www and "ssl_verify_client on;" in www
    assert 'include "/etc/nginx/gc-locations.conf";' in www
    wildcard = next(b for b in blocks if "api" in b)
    assert "e1" not in wildcard and "ssl_verify_client on;" in wildcard
    other = next(b for b in blocks if "other.example.com" in b)
    assert "ssl_verify_client" not in other and "r2.crt" in other
    assert len(blocks) == 4 and all(b.rstrip().endswith("}") for b in blocks)


def test_nginx_layout_with_two_verifying_certificates_trusts_both_roots():
    bundle = parse_bundle(snapshot(item("r1", ["a.com"], verify=True), item("e1", ["a.com"], "ECC", verify=True)))
    files = nginx_layout(bundle, DIR, ["8443"])
    assert files["clientca-r1-e1.crt"].content.count(b"BEGIN CERTIFICATE") == 2
    assert 'ssl_client_certificate "/srv/gc/clientca-r1-e1.crt";' in files["gatewaycerts.conf"].content.decode()


def test_nginx_layout_of_an_empty_snapshot_refuses_every_handshake():
    files = nginx_layout(parse_bundle(snapshot()), DIR, ["8443"])
    assert set(files) == {"gatewaycerts.conf"}
    conf = files["gatewaycerts.conf"].content.decode()
    assert conf.count("server {") == 1 and "ssl_reject_handshake on;" in conf


def test_a_certificate_verifying_clients_for_some_names_only_comes_as_two_items():
    bundle = parse_bundle(snapshot(item("r1", ["open.example.com"]), item("r1", ["mtls.example.com"], verify=True)))
    conf = nginx_layout(bundle, DIR, ["8443"])["gatewaycerts.conf"].content.decode()
    blocks = conf.split("server {\n")[1:]
    open_block = next(b for b in blocks if "open.example.com" in b)
    mtls_block = next(b for b in blocks if "mtls.example.com" in b)
    assert "ssl_verify_client" not in open_block and "r1.crt" in open_block
    assert "ssl_verify_client on;" in mtls_block and "r1.crt" in mtls_block
    lines = [ln for ln in haproxy_layout(bundle, DIR)["crt-list.txt"].content.decode().splitlines() if ln[0] != "#"]
    assert lines == [
        "/srv/gc/keys/r1.pem open.example.com",
        "/srv/gc/keys/r1.pem [ca-file /srv/gc/r1.ca.crt verify required] mtls.example.com",
    ]


def test_a_second_certificate_of_one_algorithm_for_a_name_is_resolved_deterministically():
    bundle = parse_bundle(snapshot(item("zz", ["a.com"]), item("aa", ["a.com"])))
    rsa, ecc = serving_pairs(bundle)["a.com"]
    assert rsa is not None and rsa.certificate_id == "aa" and ecc is None


def test_haproxy_layout_one_crt_list_line_per_certificate_with_sni_filters():
    bundle = parse_bundle(
        snapshot(
            item("r1", ["www.example.com", "*.api.example.com"], verify=True), item("e1", ["www.example.com"], "ECC")
        )
    )
    files = haproxy_layout(bundle, DIR)
    assert set(files) == {"keys/r1.pem", "keys/e1.pem", "r1.ca.crt", "crt-list.txt"}
    pem = files["keys/r1.pem"]
    assert pem.mode == 0o600
    assert pem.content.decode().index("BEGIN CERTIFICATE") < pem.content.decode().index("BEGIN PRIVATE KEY")
    lines = [line for line in files["crt-list.txt"].content.decode().splitlines() if not line.startswith("#")]
    assert lines == [
        "/srv/gc/keys/r1.pem [ca-file /srv/gc/r1.ca.crt verify required] www.example.com *.api.example.com",
        "/srv/gc/keys/e1.pem www.example.com",
    ]


# --- files ----------------------------------------------------------------------------------------------------


def _apply(directory: Path, document: dict):
    bundle = parse_bundle(document)
    layout = nginx_layout(bundle, PurePosixPath(directory), ["8443"])
    prepare_directory(directory)
    return apply_layout(
        directory,
        layout,
        version=bundle.version,
        last_files=read_manifest(directory),
        index_files={"gatewaycerts.conf"},
    )


def test_files_are_written_with_modes_include_last_and_unchanged_files_left_alone(tmp_path: Path):
    directory = tmp_path / "gc"
    first = _apply(directory, snapshot(item("r1", ["a.com"]), item("e1", ["a.com"], "ECC")))
    assert first.written[-1] == "gatewaycerts.conf" and len(first.written) == 5
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert oct((directory / "keys").stat().st_mode & 0o777) == "0o700"
    assert oct((directory / "keys" / "r1.key").stat().st_mode & 0o777) == "0o600"
    assert oct((directory / "r1.crt").stat().st_mode & 0o777) == "0o644"
    assert json.loads((directory / MANIFEST).read_text())["files"] == sorted(first.written)
    inode = (directory / "keys" / "r1.key").stat().st_ino
    again = _apply(directory, snapshot(item("r1", ["a.com"]), item("e1", ["a.com"], "ECC"), version="v2"))
    assert not again.changed
    assert (directory / "keys" / "r1.key").stat().st_ino == inode
    assert not [p for p in directory.rglob("*") if p.name.startswith(".gc-tmp-")]


def test_a_changed_file_is_replaced_by_rename_and_a_loosened_mode_is_restored(tmp_path: Path):
    directory = tmp_path / "gc"
    _apply(directory, snapshot(item("r1", ["a.com"])))
    key = directory / "keys" / "r1.key"
    inode = key.stat().st_ino
    key.chmod(0o644)
    result = _apply(directory, snapshot(item("r1", ["a.com"])))
    assert result.written == ["keys/r1.key"]
    assert key.stat().st_ino != inode and oct(key.stat().st_mode & 0o777) == "0o600"


def test_only_files_the_agent_wrote_are_removed(tmp_path: Path):
    directory = tmp_path / "gc"
    _apply(directory, snapshot(item("r1", ["a.com"]), item("r2", ["b.com"])))
    (directory / "mine.conf").write_text("user's file\n")
    result = _apply(directory, snapshot(item("r2", ["b.com"])))
    assert sorted(result.removed) == ["keys/r1.key", "r1.crt"]
    assert (directory / "mine.conf").exists() and (directory / "r2.crt").exists()
    assert "r1" not in (directory / "gatewaycerts.conf").read_text()


def test_a_hand_edited_manifest_never_makes_the_agent_delete_outside_its_directory(tmp_path: Path):
    directory = tmp_path / "gc"
    _apply(directory, snapshot())
    outside = tmp_path / "precious"
    outside.write_text("x")
    (directory / MANIFEST).write_text(json.dumps({"files": ["../precious", str(outside)]}))
    _apply(directory, snapshot())
    assert outside.exists()


# --- arguments ------------------------------------------------------------------------------------------------

URL = "http://127.0.0.1:1/gateway/v1/p/instances/i"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param([], "required", id="nothing"),
        pytest.param(["--url", URL, "--dir", "D", "--format", "caddy"], "--format", id="unknown format"),
        pytest.param(["--url", "ftp://h/x", "--dir", "D", "--format", "nginx"], "--url", id="not http"),
        pytest.param(["--url", URL + "?key=gk_1_s", "--dir", "D", "--format", "nginx"], "query", id="key in url"),
        pytest.param(["--url", URL, "--dir", "D", "--format", "nginx", "--wait", "61"], "--wait", id="wait > 60"),
        pytest.param(["--url", URL, "--dir", "D", "--format", "nginx", "--wait", "x"], "--wait", id="wait not int"),
        pytest.param(["--url", URL, "--dir", "a b", "--format", "nginx"], "--dir", id="dir with space"),
        pytest.param(
            ["--url", URL, "--dir", "D", "--format", "nginx", "--nginx-listen", "80;x"], "listen", id="listen"
        ),
        pytest.param(
            ["--url", URL, "--dir", "D", "--format", "nginx", "--on-change", "'unclosed"], "--on-change", id="cmd"
        ),
        pytest.param(
            ["--url", URL, "--dir", "D", "--format", "nginx", "--key-file", "/nonexistent"], "key file", id="kf"
        ),
        pytest.param(["--url", URL, "--dir", "D", "--format", "nginx", "--max-backoff", "0"], "backoff", id="backoff"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], says: str, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("GATEWAYCERTS_GATEWAY_KEY", "gk_1_secret")
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gatewaycerts sync: error: ") and says in err
    assert "gk_1_secret" not in err


def test_no_credential_is_a_usage_error_and_both_files_are_refused(tmp_path: Path):
    base = ["--url", URL, "--dir", str(tmp_path), "--format", "nginx"]
    with pytest.raises(UsageError, match="credential"):
        parse_options(base, environ={})
    key = tmp_path / "k"
    key.write_text("gk_1_s\n")
    with pytest.raises(UsageError, match="not allowed with"):
        parse_options([*base, "--key-file", str(key), "--token-file", str(key)], environ={})
    options = parse_options([*base, "--key-file", str(key)], environ={})
    assert options.credential() == "gk_1_s" and options.bundle_url == URL + "/bundle"


def test_the_installed_command_exits_2_with_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "sync", "--url", URL, "--format", "nginx"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--dir" in done.stderr, done.stderr


# --- the fetch loop against a stand-in answerer -----------------------------------------------------------------


class Answerer(http.server.ThreadingHTTPServer):
    """Answers GET with the queued (status, body) replies and records each request's path and headers."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict | None]] = []
        self.seen: list[tuple[str, dict]] = []
        self.stale = ""
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append((self.path, dict(self.headers)))
                status, body = outer.replies.pop(0)
                if 300 <= status < 400 and body:
                    self.send_response(status)
                    self.send_header("Location", body["location"])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if status == 200:
                    self.send_header("ETag", f'"{body["version"]}"')
                if outer.stale:
                    self.send_header("X-Gateway-Stale-Seconds", outer.stale)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def answerer() -> Iterator[Answerer]:
    server = Answerer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _agent(answerer: Answerer, directory: Path, *extra: str) -> Agent:
    url = f"http://127.0.0.1:{answerer.server_address[1]}/gateway/v1/p/instances/i"
    args = ["--url", url, "--dir", str(directory), "--format", "haproxy", *extra]
    return Agent(parse_options(args, environ={"GATEWAYCERTS_GATEWAY_KEY": "gk_k1_topsecret"}))


def test_an_error_answer_keeps_every_file_and_a_good_one_replaces_them(answerer: Answerer, tmp_path: Path):
    directory = tmp_path / "hp"
    marker = tmp_path / "changed"
    agent = _agent(answerer, directory, "--on-change", f"touch {marker}")
    answerer.replies = [(200, snapshot(item("r1", ["a.com"]), version="v1"))]
    etag = agent.sync_once(None)
    assert etag == '"v1"' and (directory / "keys" / "r1.pem").exists() and marker.exists()
    path, headers = answerer.seen[-1]
    assert headers["Authorization"] == "Bearer gk_k1_topsecret" and "topsecret" not in path
    marker.unlink()
    before = {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    for status, body in [
        (500, {"error_code": "APIG.9999", "error_msg": "system error"}),
        (401, {"error_code": "APIG.1000", "error_msg": "bad key gk_k1_topsecret"}),
        (200, {"version": "v9"}),  # no items: unusable, not "nothing bound"
    ]:
        answerer.replies = [(status, body)]
        with pytest.raises(FetchError) as caught:
            agent.sync_once(etag)
        assert "topsecret" not in str(caught.value)
        assert {p: p.read_bytes() for p in directory.rglob("*") if p.is_file()} == before
        assert not marker.exists()
    path, headers = answerer.seen[-1]
    assert path.endswith("/bundle?wait=55") and headers["If-None-Match"] == '"v1"'
    answerer.replies = [(304, None)]
    assert agent.sync_once(etag) == etag and not marker.exists()
    answerer.replies = [(200, snapshot(item("r2", ["b.com"]), version="v2"))]
    assert agent.sync_once(etag) == '"v2"'
    assert not (directory / "keys" / "r1.pem").exists() and (directory / "keys" / "r2.pem").exists()
    assert marker.exists()


def test_a_stale_answer_is_used_and_logged(answerer: Answerer, tmp_path: Path, caplog):
    agent = _agent(answerer, tmp_path / "hp")
    answerer.stale = "42"
    answerer.replies = [(200, snapshot(item("r1", ["a.com"]))), (304, None)]
    with caplog.at_level("WARNING", logger="gatewaycerts.sync"):
        etag = agent.sync_once(None)
        assert (tmp_path / "hp" / "keys" / "r1.pem").exists()
        agent.sync_once(etag)
    assert [r.getMessage() for r in caplog.records].count(
        "the service answers from a state 42 s old (its store is unreachable)"
    ) == 2


def test_a_redirect_is_an_error_and_the_credential_goes_nowhere_else(answerer: Answerer, tmp_path: Path):
    agent = _agent(answerer, tmp_path / "hp")
    elsewhere = f"http://127.0.0.1:{answerer.server_address[1]}/elsewhere"
    answerer.replies = [(302, {"location": elsewhere}), (200, snapshot())]
    with pytest.raises(FetchError, match="HTTP 302"):
        agent.sync_once(None)
    assert [path for path, _ in answerer.seen] == ["/gateway/v1/p/instances/i/bundle"]


def test_a_failed_on_change_is_retried_and_once_reports_it(answerer: Answerer, tmp_path: Path):
    directory = tmp_path / "hp"
    agent = _agent(answerer, directory, "--on-change", "false", "--once")
    answerer.replies = [(200, snapshot(item("r1", ["a.com"])))]
    assert agent.run() == 1
    assert agent.reload_pending and (directory / "crt-list.txt").exists()
    marker = directory / ".gatewaycerts-sync.reload-pending"
    assert marker.exists()
    # the next run (a restart) owes the gateway that reload even though no file changes any more
    answerer.replies = [(200, snapshot(item("r1", ["a.com"])))]
    again = _agent(answerer, directory, "--on-change", f"touch {tmp_path / 'reloaded'}")
    assert again.reload_pending
    again.sync_once(None)
    assert not again.reload_pending and not marker.exists() and (tmp_path / "reloaded").exists()
    assert not _agent(answerer, directory, "--on-change", "true").reload_pending


def test_backoff_doubles_with_jitter_up_to_the_cap(answerer: Answerer, tmp_path: Path):
    agent = _agent(answerer, tmp_path / "hp", "--max-backoff", "8")
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (10, 8), (100, 8)]:
        delays = [agent.backoff(failures) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_once_against_an_unreachable_service_exits_1_and_writes_nothing(tmp_path: Path, capsys):
    from tests.mongo_server import free_port

    url = f"http://127.0.0.1:{free_port()}/gateway/v1/p/instances/i"
    agent = Agent(
        parse_options(
            ["--url", url, "--dir", str(tmp_path / "gc"), "--format", "nginx", "--once"],
            environ={"GATEWAYCERTS_GATEWAY_KEY": "gk_k1_topsecret"},
        )
    )
    assert agent.run() == 1
    assert not (tmp_path / "gc").exists()
