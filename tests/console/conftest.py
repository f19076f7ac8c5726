"""The console in a real browser: Debian's headless Chromium driven by Playwright, against the real service
(`gatewaycerts serve` in a subprocess on a loopback port, SQLite in a temporary state dir)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from tests.mongo_server import free_port, wait_for_port

CHROMIUM = os.environ.get("GATEWAYCERTS_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parents[2] / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Where screenshots of each page go when GATEWAYCERTS_CONSOLE_SCREENSHOTS is set (docs/console/).
SCREENSHOTS = os.environ.get("GATEWAYCERTS_CONSOLE_SCREENSHOTS")


def _missing(what: str, install: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the console tests must run in CI: {what} is missing ({install})")
    pytest.skip(f"{what} is missing: {install}")


@pytest.fixture(scope="session")
def sync_playwright_factory():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright", "pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        _missing("Chromium", "apt-get install -y --no-install-recommends chromium")
    return sync_playwright


@pytest.fixture(scope="module")
def browser(sync_playwright_factory) -> Iterator:
    # Per module, never per session: Playwright's sync API runs an event loop in this thread while it is
    # open, and the async tests collected after these could not start their own.
    with sync_playwright_factory() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _missing("axe-core", "npm install --prefix .cache/axe axe-core (.ci/run does it)")
    return AXE.read_text()


@dataclass
class Service:
    url: str
    state_dir: Path
    proc: subprocess.Popen

    def token(self, project: str = "demo", role: str = "admin", subject: str = "tester") -> str:
        key = load_or_create_dev_key(self.state_dir)
        return mint_token(key, subject=subject, projects=[project], roles=[role], ttl=600)

    def call(self, method: str, path: str, token: str, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"X-Auth-Token": token, "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else {}


def service_env(state_dir: Path, port: int | None = None) -> dict[str, str]:
    """The environment of `make run`: embedded store and dev keys in `state_dir`, nothing from the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
    env["GATEWAYCERTS_STATE_DIR"] = str(state_dir)
    if port is not None:
        env["GATEWAYCERTS_PORT"] = str(port)
    return env


def start_service(state_dir: Path) -> Service:
    port = free_port()
    env = service_env(state_dir, port)
    log = open(state_dir.parent / f"serve-{port}.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "gatewaycerts", "serve"], env=env, stdout=log, stderr=log)
    wait_for_port(port, proc)
    return Service(url=f"http://127.0.0.1:{port}", state_dir=state_dir, proc=proc)


def stop_service(service: Service) -> None:
    service.proc.terminate()
    try:
        service.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        service.proc.kill()
        service.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("console")
    svc = start_service(root / "state")
    yield svc
    stop_service(svc)


@dataclass
class Watched:
    """A page with what it did that a test may need to refute: dialogs opened, script errors."""

    page: object
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    w = Watched(page)

    def on_dialog(dialog) -> None:
        w.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: w.errors.append(str(exc)))
    yield w
    context.close()


def sign_in(page, service: Service, project: str = "demo", role: str = "admin") -> None:
    """The demo sign-in (the service runs with its development key)."""
    page.goto(service.url + "/console/")
    page.fill("#demo-sign-in input", project)
    page.select_option("#demo-sign-in select", role)
    page.click("#demo-sign-in button[type=submit]")
    page.wait_for_selector("#roles")
    page.wait_for_selector(".page[data-ready=true]")


def go(page, hash_route: str) -> None:
    """Navigate inside the console (the token stays in the tab's memory) and wait for the page to be drawn."""
    page.evaluate(
        """(h) => {
            document.querySelector('.page')?.removeAttribute('data-ready');
            if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
            else location.hash = h;
        }""",
        hash_route,
    )
    page.wait_for_selector(".page[data-ready=true]")


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        height = min(page.evaluate("document.documentElement.scrollHeight"), 1100)  # small files for the docs
        page.screenshot(
            path=str(Path(SCREENSHOTS) / f"{name}.png"),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": height},
        )
