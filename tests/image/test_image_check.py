"""`make image-check` (deploy/image/check.py) fails on a broken Dockerfile, naming what is broken.

Each variant is the real Dockerfile with a few lines appended, so the build reuses every cached layer of the
good image (built first, by `make image-check` in CI or by the fixture) and rebuilds only what was appended.
Needs root, podman, debootstrap and the Helm check's venv (`make helm-check`): skipped without them on a
developer machine, required in CI.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "deploy" / "image" / "check.py"
WRAPPER = REPO / "deploy" / "image" / "image-check.sh"
HELM_PYTHON = REPO / ".cache" / "helm-venv" / "bin" / "python"
DOCKERFILE = (REPO / "Dockerfile").read_text()


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "root (podman builds and chroot)"
    for tool in ("podman", "debootstrap", "unshare"):
        if not shutil.which(tool):
            return f"{tool} (apt-get install --no-install-recommends podman debootstrap)"
    if not HELM_PYTHON.exists():
        return "the Helm check's venv (make helm-check)"
    return None


@pytest.fixture(scope="module")
def tooling() -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the image check must run in CI; missing: {missing}")
        pytest.skip(f"needs {missing}")


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(WRAPPER), *args], cwd=REPO, capture_output=True, text=True, timeout=1800, check=False
    )


def lines(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def good(tooling: None) -> str:
    """The real Dockerfile passes: the variants below fail because of what they change, nothing else."""
    done = run_check()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert not lines(done.stdout, "FAIL"), done.stdout
    assert lines(done.stdout, "image-check: ")[-1].endswith(" 0 failed")
    return done.stdout


def make_ca(path: Path) -> None:
    """A throwaway self-signed CA certificate: what a proxy's CA file looks like."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "image-check throwaway proxy CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# (variant id, lines appended to the Dockerfile, the FAIL lines the check must print)
BROKEN = [
    pytest.param("USER 0:0\n", ["FAIL  user:", "FAIL  process user:"], id="runs-as-root"),
    pytest.param("USER root\n", ["FAIL  user: USER 'root' must be numeric"], id="user-by-name"),
    pytest.param(
        "USER 0:0\nRUN chmod o+w /opt/gatewaycerts/bin\nUSER 10001:10001\n",
        ["FAIL  writable: writable by 10001:10001 outside the chart's emptyDirs: /opt/gatewaycerts/bin"],
        id="world-writable-venv",
    ),
    pytest.param("ENV GATEWAYCERTS_PORT=9090\n", ["FAIL  chart port:", "FAIL  healthcheck runs:"], id="port"),
    pytest.param('ENTRYPOINT ["gatewaycert"]\n', ["FAIL  start:"], id="entrypoint"),
    pytest.param(
        "COPY --from=builder /src /src\nUSER 0:0\nRUN cp /bin/true /usr/bin/gcc && mkdir -p /root/.cache/pip/http"
        " && head -c 60000000 /dev/zero > /var/cache/blob\nUSER 10001:10001\n",
        [
            "FAIL  no compiler: /usr/bin/gcc",
            "FAIL  no pip cache: /root/.cache/pip",
            "FAIL  no source tree: /src",
            "FAIL  size:",
        ],
        id="build-leftovers",
    ),
    pytest.param(
        "USER 0:0\nRUN --mount=type=secret,id=ca cp /run/secrets/ca /etc/leaked-ca.pem\nUSER 10001:10001\n",
        ["FAIL  build CA absent: build secret's certificate found in /etc/leaked-ca.pem"],
        id="ca-baked-in",
    ),
]


@pytest.mark.parametrize(("appended", "expected"), BROKEN)
def test_broken_dockerfile_fails_naming_the_property(
    good: str, tmp_path: Path, request: pytest.FixtureRequest, appended: str, expected: list[str]
) -> None:
    variant = request.node.callspec.id
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(DOCKERFILE + "\n# broken on purpose (tests/image)\n" + appended)
    args = ["--dockerfile", str(dockerfile), "--tag", f"localhost/gatewaycerts:broken-{variant}"]
    if variant == "ca-baked-in":
        ca = tmp_path / "proxy-ca.pem"
        make_ca(ca)
        args += ["--ca", str(ca)]
    done = run_check(*args)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-4000:]
    for want in expected:
        assert any(line.startswith(want) for line in output.splitlines()), f"no line {want!r} in:\n{output[-4000:]}"
    # Only the appended lines were rebuilt: every step of the real Dockerfile came from the layer cache.
    log = (REPO / ".cache" / "image" / f"build-broken-{variant}.log").read_text()
    assert "RUN python3 -m venv" in log
    assert log.count("Using cache") >= DOCKERFILE.count("\nRUN ") + DOCKERFILE.count("\nCOPY ")


def test_build_secret_ca_is_what_pip_uses(tooling: None, tmp_path: Path) -> None:
    """With a CA that signed nothing on the way to the package index, pip in the builder stage must fail
    certificate verification: the secret is really what pip trusts (rebuilt without the layer cache)."""
    spec = importlib.util.spec_from_file_location("image_check", CHECK)
    assert spec and spec.loader
    image_check = importlib.util.module_from_spec(spec)
    sys.modules["image_check"] = image_check
    spec.loader.exec_module(image_check)
    base, _ = image_check.base_image()
    ca = tmp_path / "wrong-ca.pem"
    make_ca(ca)
    done = subprocess.run(
        [*image_check.podman_cmd(), "build", "--isolation=chroot", "--no-cache", "--layers=false",
         "--target", "builder", "--build-arg", f"PYTHON_IMAGE={base}", "--secret", f"id=ca,src={ca}",
         "--tag", "localhost/gatewaycerts:wrong-ca", str(REPO)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    image_check.release_storage()
    assert done.returncode != 0, done.stdout[-3000:]
    assert "CERTIFICATE_VERIFY_FAILED" in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]
