#!/usr/bin/env python3
"""Build the image the chart deploys and start it (`make image-check`): no Docker engine, no registry.

1. Base: a Debian 12 (bookworm) minbase root filesystem made by `debootstrap` from the mirror apt uses here,
   with python3, python3-venv, passwd and ca-certificates, imported into podman as
   localhost/gatewaycerts-base:KEY. The tarball is cached under .cache/image/, keyed by its package list.
   Debian's Python refuses a system-wide `pip install` (PEP 668) where python:3.11-slim does not, so a
   Dockerfile that builds here does not depend on that difference.
2. Build: `podman build --isolation=chroot --layers` of the repository's Dockerfile with
   `--build-arg PYTHON_IMAGE=<that base>` (and `--secret id=ca` when a CA is given for a TLS-intercepting
   proxy). The Dockerfile is the one `docker build` uses, unchanged.
3. Static checks on the image's own filesystem (`podman image mount`, read-only) and config
   (`podman image inspect`), against the chart rendered with deploy/helm/ci/required.yaml (Helm's SDK, as
   `make helm-check` renders it): user, port, state directory, probes, entrypoint; nothing outside the
   chart's writable mounts is writable by the image's user; no compiler, pip cache, source tree or build
   CA; the image below MAX_IMAGE_MB.
4. Runtime checks: in a private mount and network namespace (`unshare`; only loopback exists there, so the
   image's own 0.0.0.0:8080 is reachable from nowhere else), /proc, a minimal /dev and the chart's emptyDirs
   (tmpfs) are mounted on the read-only image filesystem, and the image's ENTRYPOINT+CMD are started with
   its environment, WORKDIR and USER through chroot (a container runtime cannot start here: its setrlimit
   is refused). Then: the chart's probe paths answer, the image's HEALTHCHECK passes, the process runs as
   the chart's runAsUser/runAsGroup, it wrote into the state directory, and SIGTERM stops it with status 0
   within the chart's grace period (minus the preStop sleep, which the kubelet counts in it).

Prints one line per check and `image-check: N passed, N failed`; exits non-zero if any check failed.
"""

# ruff: noqa: S603, S607 (a build tool: it runs podman, debootstrap, tar, mount and unshare by name)
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = REPO / ".cache" / "image"
HELM_DIR = REPO / "deploy" / "helm"
VALUES_FILE = HELM_DIR / "ci" / "required.yaml"

SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "passwd", "ca-certificates")
# Config the official python image carries and a bare import lacks.
BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
# Like debian:*-slim: no documentation, manual pages or translations; no apt downloads or lists; no device
# nodes (the runtime makes /dev).
BASE_STRIP = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/locale",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "dev",
)

# The image on the Debian base measured 194 MB (podman's uncompressed size, 2026-12-07): base ~130 MB + the
# venv ~65 MB. The bound leaves about 30 % for dependency growth; a compiler or a stray build tree exceeds it.
MAX_IMAGE_MB = 250

COMPILERS = re.compile(r"^(gcc|cc|c\+\+|g\+\+|cpp|clang|clang\+\+|tcc|x86_64-linux-gnu-gcc|[\w-]*-gcc)(-[\d.]+)?$")
RUNTIME_MOUNTS = ("proc", "sys", "dev")  # made by the runtime, not part of the image


@dataclass
class Result:
    name: str
    ok: bool
    detail: str


@dataclass
class Results:
    items: list[Result] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.items.append(Result(name, bool(ok), detail))
        print(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}", flush=True)

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.items)


# --- podman -------------------------------------------------------------------------------------------------


def podman_cmd() -> list[str]:
    """podman with the project's own storage under .cache/image (overlay; IMAGE_STORAGE_DRIVER=vfs where the
    kernel's overlayfs is unavailable)."""
    root = CACHE / "storage"
    runroot = Path("/run") / f"gatewaycerts-image-{hashlib.sha256(str(root).encode()).hexdigest()[:12]}"
    driver = os.environ.get("IMAGE_STORAGE_DRIVER", "overlay")
    return ["podman", "--root", str(root), "--runroot", str(runroot), "--storage-driver", driver]


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*podman_cmd(), *args], check=False, text=True, capture_output=True)
    if done.returncode:
        raise SystemExit(
            f"image-check: podman {args[0]} {args[1] if len(args) > 1 else ''} exited "
            f"{done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done


def release_storage() -> None:
    """podman's overlay driver bind-mounts its layer directory onto itself and leaves it mounted: unmount it
    when done, so that nothing of the check stays mounted (the next podman call mounts it again)."""
    layers = str(CACHE / "storage" / "overlay")
    mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    if layers in mounted:
        subprocess.run(["umount", layers], check=False)


def image_exists(ref: str) -> bool:
    return subprocess.run([*podman_cmd(), "image", "exists", ref], check=False).returncode == 0


def apt_mirror() -> str:
    """The Debian mirror apt uses here (debootstrap needs one)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for match in re.finditer(r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.MULTILINE):
            uri = match.group(1).rstrip("/")
            if "security" not in uri:
                return uri
    raise SystemExit("image-check: no Debian mirror found in /etc/apt/sources.list*")


def base_image() -> tuple[str, str]:
    """Make (or reuse) the local Debian base image; returns (reference, how long it took or 'cached')."""
    recipe = json.dumps([SUITE, "minbase", BASE_PACKAGES, BASE_STRIP, BASE_CHANGES])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    ref = f"localhost/gatewaycerts-base:{key}"
    if image_exists(ref):
        return ref, "cached image"
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"base-{SUITE}-{key}.tar"
    how = "cached tarball"
    if not tarball.exists():
        with tempfile.TemporaryDirectory(dir=CACHE, prefix="debootstrap-") as tmp:
            rootfs = Path(tmp) / "rootfs"
            log = CACHE / "debootstrap.log"
            with log.open("w") as out:
                done = subprocess.run(
                    ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE,
                     str(rootfs), apt_mirror()],
                    check=False, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            if done.returncode:
                sys.stdout.write(log.read_text(errors="replace")[-3000:])
                raise SystemExit(f"FAIL  base: debootstrap exited {done.returncode} (log: {log})")
            for rel in BASE_STRIP:
                target = rootfs / rel
                if target.is_dir():
                    for child in target.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
            partial = tarball.with_suffix(".part")
            subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
        how = "debootstrap"
    changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
    podman("import", *changes, str(tarball), ref)
    return ref, f"{how} + import, {time.monotonic() - started:.0f} s"


def build(args: argparse.Namespace, base: str) -> float:
    started = time.monotonic()
    cmd = [
        "build", "--isolation=chroot", "--layers", "--format=docker", "--file", str(args.dockerfile),
        "--build-arg", f"PYTHON_IMAGE={base}", "--tag", args.tag,
    ]  # fmt: skip
    if args.ca:
        cmd += ["--secret", f"id=ca,src={args.ca}"]
    log = CACHE / f"build-{args.tag.rsplit(':', 1)[-1]}.log"
    with log.open("w") as out:
        done = subprocess.run([*podman_cmd(), *cmd, str(REPO)], check=False, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.stdout.write(log.read_text()[-4000:])
        raise SystemExit(f"FAIL  build: podman build exited {done.returncode} (log: {log})")
    return time.monotonic() - started


# --- the chart ----------------------------------------------------------------------------------------------


@dataclass
class Chart:
    """What the rendered Deployment says about the container."""

    port: int
    run_as_user: int | None
    run_as_group: int | None
    fs_group: int | None
    args: list[str]
    command: list[str] | None
    writable: dict[str, str]  # emptyDir mount path -> sizeLimit
    probes: dict[str, str]  # startup/liveness/readiness -> path
    startup_seconds: int
    grace_seconds: int
    pre_stop_seconds: int
    config: dict[str, str]


def render_chart() -> Chart:
    # deploy/helm/check.py: the same loading and rendering as `make helm-check`.
    spec = importlib.util.spec_from_file_location("helm_check", HELM_DIR / "check.py")
    assert spec and spec.loader
    helm_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helm_check)

    with helm_check.helm.Chart.load(helm_check.CHART) as chart:
        rendered = helm_check.render(chart, helm_check.load_values(VALUES_FILE))
    docs = [doc for _, doc in helm_check.manifests(rendered)]
    deployment = helm_check.one(docs, "Deployment")
    config = helm_check.one(docs, "ConfigMap")["data"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    writable = {
        m["mountPath"]: volumes[m["name"]]["emptyDir"].get("sizeLimit", "64Mi")
        for m in container.get("volumeMounts", [])
        if "emptyDir" in volumes.get(m["name"], {})
    }
    named_ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    probes = {}
    for kind in ("startup", "liveness", "readiness"):
        get = container.get(f"{kind}Probe", {}).get("httpGet", {})
        probes[kind] = get.get("path", "")
        if get.get("port") not in (None, "http", named_ports.get("http")):
            raise SystemExit(f"image-check: {kind}Probe uses port {get.get('port')}, not the http port")
    startup = container.get("startupProbe", {})
    psc = pod.get("securityContext", {})
    csc = container.get("securityContext", {})
    return Chart(
        port=named_ports["http"],
        run_as_user=csc.get("runAsUser", psc.get("runAsUser")),
        run_as_group=csc.get("runAsGroup", psc.get("runAsGroup")),
        fs_group=psc.get("fsGroup"),
        args=container.get("args", []),
        command=container.get("command"),
        writable=writable,
        probes=probes,
        startup_seconds=startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10),
        grace_seconds=pod.get("terminationGracePeriodSeconds", 30),
        pre_stop_seconds=int(container["lifecycle"]["preStop"]["exec"]["command"][1]),
        config=config,
    )


# --- static checks ------------------------------------------------------------------------------------------


@dataclass
class Image:
    ref: str
    entrypoint: list[str]
    cmd: list[str]
    uid: int
    gid: int
    workdir: str
    env: dict[str, str]
    ports: list[str]
    healthcheck: list[str]
    size: int


def inspect(ref: str) -> Image:
    (data,) = json.loads(podman("image", "inspect", ref).stdout)
    config = data.get("Config") or {}
    user = config.get("User") or "0"
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise SystemExit(f"FAIL  user: USER {user!r} must be numeric (UID:GID), as runAsNonRoot needs")
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    health = (data.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test") or []
    return Image(
        ref=ref,
        entrypoint=config.get("Entrypoint") or [],
        cmd=config.get("Cmd") or [],
        uid=int(uid),
        gid=int(gid or 0),
        workdir=config.get("WorkingDir") or "/",
        env=env,
        ports=sorted(config.get("ExposedPorts") or {}),
        healthcheck=health,
        size=int(data["Size"]),
    )


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path inside the image, lstat) of everything but the runtime's own mounts."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel_dir = "/" if rel == "." else "/" + rel
        if rel_dir == "/":
            dirnames[:] = [d for d in dirnames if d not in RUNTIME_MOUNTS]
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            yield os.path.join(rel_dir, name), os.lstat(path)


def under(path: str, prefixes: Iterator[str] | list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def ca_markers(ca: Path | None, root: Path) -> list[bytes]:
    """A distinctive line of each certificate in the build CA file that the image's own trust store lacks
    (a proxy's CA; the public CAs a bundle also holds are legitimately in the image)."""
    if not ca:
        return []
    own = b""
    for bundle in ("etc/ssl/certs/ca-certificates.crt",):
        with contextlib.suppress(OSError):
            own += (root / bundle).read_bytes()
    markers = []
    for block in re.findall(rb"-----BEGIN CERTIFICATE-----\s+(.+?)-----END", ca.read_bytes(), re.DOTALL):
        lines = block.split()
        marker = lines[len(lines) // 2] if lines else b""
        if len(marker) >= 40 and marker not in own:
            markers.append(marker)
    return markers


def static_checks(res: Results, image: Image, chart: Chart, root: Path, ca: Path | None) -> None:
    # The chart and the image agree.
    res.add("user", image.uid != 0 and image.gid != 0, f"USER {image.uid}:{image.gid} (must not be root)")
    res.add(
        "chart user",
        (chart.run_as_user, chart.run_as_group) == (image.uid, image.gid) and chart.fs_group == image.gid,
        f"runAsUser/runAsGroup/fsGroup {chart.run_as_user}/{chart.run_as_group}/{chart.fs_group}, "
        f"image USER {image.uid}:{image.gid}",
    )
    port = image.env.get("GATEWAYCERTS_PORT", "")
    res.add(
        "chart port",
        image.ports == [f"{chart.port}/tcp"] and port == str(chart.port),
        f"containerPort {chart.port}, EXPOSE {image.ports}, GATEWAYCERTS_PORT={port or '(unset)'}",
    )
    res.add(
        "chart listen address",
        image.env.get("GATEWAYCERTS_HOST") == chart.config.get("GATEWAYCERTS_HOST") == "0.0.0.0",  # noqa: S104
        f"image GATEWAYCERTS_HOST={image.env.get('GATEWAYCERTS_HOST')}, "
        f"chart {chart.config.get('GATEWAYCERTS_HOST')} (a pod is reached on its own address)",
    )
    state = image.env.get("GATEWAYCERTS_STATE_DIR", "")
    res.add(
        "chart state directory",
        state == chart.config.get("GATEWAYCERTS_STATE_DIR") and state in chart.writable and image.workdir == state,
        f"image GATEWAYCERTS_STATE_DIR={state or '(unset)'} WORKDIR {image.workdir}, chart "
        f"{chart.config.get('GATEWAYCERTS_STATE_DIR')}, emptyDirs {sorted(chart.writable)}",
    )
    res.add(
        "chart entrypoint",
        bool(image.entrypoint) and chart.command is None and chart.args == image.cmd,
        f"image ENTRYPOINT {image.entrypoint} CMD {image.cmd}; chart command {chart.command} args {chart.args}",
    )
    res.add(
        "healthcheck",
        bool(image.healthcheck) and f":{chart.port}{chart.probes['liveness']}" in " ".join(image.healthcheck),
        f"HEALTHCHECK {' '.join(image.healthcheck[1:])[:90] or '(none)'}",
    )

    # The filesystem.
    writable, compilers, caches, sources, total = [], [], [], [], 0
    gids = {image.gid}
    for path, st in walk(root):
        total += 1
        name = path.rsplit("/", 1)[-1]
        mode = st.st_mode
        if not stat.S_ISLNK(mode):
            can_write = (
                (st.st_uid == image.uid and mode & stat.S_IWUSR)
                or (st.st_gid in gids and mode & stat.S_IWGRP)
                or mode & stat.S_IWOTH
            )
            if can_write and not under(path, list(chart.writable)):
                writable.append(f"{path} ({stat.filemode(mode)} {st.st_uid}:{st.st_gid})")
        if stat.S_ISREG(mode) and mode & 0o111 and COMPILERS.match(name):
            compilers.append(path)
        if stat.S_ISDIR(mode) and (
            path.endswith("/.cache/pip") or (name.startswith("pip-") and path.startswith("/tmp/"))  # noqa: S108 (inside the image)
        ):
            caches.append(path)
        if stat.S_ISDIR(mode) and (name in (".git", ".gatewaycerts") or path in ("/src", "/wheels")):
            sources.append(path)
        if stat.S_ISREG(mode) and name in ("pyproject.toml", "setup.cfg", "conftest.py"):
            sources.append(path)
        if stat.S_ISDIR(mode) and name == "tests" and path.rsplit("/", 2)[-2] == "gatewaycerts":
            sources.append(path)
    res.add(
        "writable",
        not writable,
        f"only {sorted(chart.writable)} writable by {image.uid}:{image.gid} ({total} entries checked)"
        if not writable
        else f"writable by {image.uid}:{image.gid} outside the chart's emptyDirs: {', '.join(writable[:8])}",
    )
    res.add("no compiler", not compilers, ", ".join(compilers[:8]) or "no gcc/cc/c++/clang")
    res.add("no pip cache", not caches, ", ".join(caches[:8]) or "no ~/.cache/pip, no /tmp/pip-*")
    res.add("no source tree", not sources, ", ".join(sources[:8]) or "no /src, .git, pyproject.toml or tests")
    markers = ca_markers(ca, root)
    if ca:
        leaked = []
        for path, st in walk(root):
            if stat.S_ISREG(st.st_mode) and st.st_size < 64 * 1024 * 1024:
                data = (root / path.lstrip("/")).read_bytes()
                if any(m in data for m in markers):
                    leaked.append(path)
        res.add(
            "build CA absent",
            not leaked,
            f"none of the {len(markers)} build-secret certificate(s) not in the image's trust store is in a file"
            if not leaked
            else f"build secret's certificate found in {', '.join(leaked[:5])}",
        )
    res.add(
        "size",
        image.size < MAX_IMAGE_MB * 1_000_000,
        f"{image.size / 1e6:.0f} MB (bound {MAX_IMAGE_MB} MB)",
    )


# --- runtime checks (run in a private mount and network namespace) --------------------------------------------


def loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), siocgifflags, ifreq))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def size_option(limit: str) -> str:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", limit)
    if not match:
        return "64m"
    return match.group(1) + {"Ki": "k", "Mi": "m", "Gi": "g", None: ""}[match.group(2)]


def prepare_root(root: Path, chart: Chart) -> None:
    """What a runtime and the chart put on the read-only image filesystem."""
    mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(root / "proc"))
    dev = root / "dev"
    mount("-t", "tmpfs", "-o", "nosuid,mode=755,size=64k", "tmpfs", str(dev))
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9)):
        os.mknod(dev / name, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(dev / name, 0o666)  # noqa: S103 (device nodes, as every container runtime makes them)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, dev / name)
    (dev / "shm").mkdir()
    mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=1777,size=64m", "tmpfs", str(dev / "shm"))
    for path, limit in chart.writable.items():
        # An emptyDir: mode 0777 with the setgid bit, group fsGroup.
        options = f"nosuid,nodev,mode=2777,size={size_option(limit)}"
        if chart.fs_group is not None:
            options += f",gid={chart.fs_group}"
        mount("-t", "tmpfs", "-o", options, "tmpfs", str(root / path.lstrip("/")))


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return resp.status, resp.read(200).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(200).decode("utf-8", "replace")


def wait_for(predicate: Any, deadline: float, step: float = 0.2) -> Any:
    """Poll a condition until it holds or the deadline passes (monotonic time)."""
    while True:
        with contextlib.suppress(OSError):
            value = predicate()
            if value:
                return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


def status_ids(pid: int) -> dict[str, list[int]]:
    ids = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            ids[key] = [int(v) for v in value.split()]
    return ids


def start(root: Path, image: Image, argv: list[str], log: Any) -> subprocess.Popen[bytes]:
    def enter() -> None:  # as `chroot --userspec=UID:GID` does, plus the image's WORKDIR
        os.chroot(root)
        os.chdir(image.workdir)
        os.setgroups([])
        os.setgid(image.gid)
        os.setuid(image.uid)

    return subprocess.Popen(  # the image's own command
        argv, env=image.env, preexec_fn=enter, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )


def runtime_checks(res: Results, image: Image, chart: Chart, root: Path, log_path: Path) -> None:
    loopback_up()
    prepare_root(root, chart)
    port = int(image.env.get("GATEWAYCERTS_PORT", chart.port))
    argv = image.entrypoint + image.cmd
    with log_path.open("wb") as log:
        started = time.monotonic()
        try:
            proc = start(root, image, argv, log)
        except OSError as exc:  # the entrypoint is missing or not executable
            res.add("start", False, f"{' '.join(argv)} could not be started: {exc}")
            return
        try:
            run_service_checks(res, image, chart, root, proc, port, started)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def run_service_checks(
    res: Results, image: Image, chart: Chart, root: Path, proc: subprocess.Popen[bytes], port: int, started: float
) -> None:
    up = wait_for(
        lambda: proc.poll() is not None or http_get(port, chart.probes["startup"])[0] == 200,
        started + chart.startup_seconds,
    )
    if proc.poll() is not None:
        res.add("start", False, f"{' '.join(image.entrypoint + image.cmd)} exited {proc.returncode} at start")
        return
    res.add(
        "start",
        bool(up),
        f"{' '.join(image.entrypoint + image.cmd)} answered {chart.probes['startup']} after "
        f"{time.monotonic() - started:.1f} s (startupProbe allows {chart.startup_seconds} s)"
        if up
        else f"no answer on {chart.probes['startup']} within the startupProbe's {chart.startup_seconds} s",
    )
    if not up:
        return
    for kind in ("liveness", "readiness"):
        path = chart.probes[kind]
        code, body = http_get(port, path)
        res.add(f"{kind} probe", code == 200, f"GET {path} -> {code} {body.strip()[:60]}")
    # The pod's identity (the chart's runAsUser/runAsGroup) is what the image's USER must give.
    ids = status_ids(proc.pid)
    uid = chart.run_as_user if chart.run_as_user is not None else image.uid
    gid = chart.run_as_group if chart.run_as_group is not None else image.gid
    res.add(
        "process user",
        (ids["Uid"], ids["Gid"]) == ([uid] * 4, [gid] * 4) and ids["Groups"] in ([], [gid]),
        f"pid {proc.pid} Uid {ids['Uid']} Gid {ids['Gid']} Groups {ids['Groups']} (the chart runs {uid}:{gid})",
    )
    state = root / image.env.get("GATEWAYCERTS_STATE_DIR", image.workdir).lstrip("/")
    written = sorted(p.name for p in state.iterdir())
    res.add("state directory used", bool(written), f"{state.relative_to(root)}: {', '.join(written) or '(empty)'}")
    if image.healthcheck and image.healthcheck[0] in ("CMD", "CMD-SHELL"):
        argv = image.healthcheck[1:] if image.healthcheck[0] == "CMD" else ["/bin/sh", "-c", image.healthcheck[1]]
        with open(os.devnull, "wb") as sink:
            check = start(root, image, argv, sink)
            code = check.wait(timeout=30)
        res.add("healthcheck runs", code == 0, f"HEALTHCHECK command exited {code} as {image.uid}:{image.gid}")
    # SIGTERM: the kubelet counts the grace period from the preStop hook, which sleeps first.
    budget = chart.grace_seconds - chart.pre_stop_seconds
    stopping = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        res.add("SIGTERM", False, f"still running {budget} s after SIGTERM (grace {chart.grace_seconds} s)")
        return
    res.add(
        "SIGTERM",
        code == 0,
        f"exited {code} {time.monotonic() - stopping:.1f} s after SIGTERM (budget {budget} s: grace "
        f"{chart.grace_seconds} s - preStop {chart.pre_stop_seconds} s)",
    )


# --- main ---------------------------------------------------------------------------------------------------


def runtime_main(payload: str) -> int:
    """Entry point inside `unshare --mount --net`: prints results as JSON on the last line."""
    data = json.loads(payload)
    res = Results()
    sys.stdout = sys.stderr  # the result lines go to stderr; stdout carries the JSON
    try:
        runtime_checks(res, Image(**data["image"]), Chart(**data["chart"]), Path(data["root"]), Path(data["log"]))
    except Exception as exc:  # noqa: BLE001 (reported as a failed check, with the checks done so far)
        res.add("runtime", False, f"{type(exc).__name__}: {exc}")
    finally:
        sys.stdout = sys.__stdout__
    print(json.dumps([asdict(r) for r in res.items]))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=Path, default=REPO / "Dockerfile")
    parser.add_argument("--tag", default="localhost/gatewaycerts:image-check")
    parser.add_argument(
        "--ca", type=Path, default=None, help="CA file for a TLS-intercepting proxy, passed as build secret `ca`"
    )
    parser.add_argument("--runtime", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runtime:
        return runtime_main(args.runtime)
    if args.ca and not args.ca.is_file():
        parser.error(f"--ca {args.ca}: no such file")

    started = time.monotonic()
    res = Results()
    base, base_how = base_image()
    print(f"image-check: base {base} ({base_how})", flush=True)
    seconds = build(args, base)
    print(f"image-check: built {args.tag} from {args.dockerfile} in {seconds:.0f} s", flush=True)
    chart = render_chart()
    image = inspect(args.tag)
    root = Path(podman("image", "mount", args.tag).stdout.strip())
    try:
        static_checks(res, image, chart, root, args.ca)
        log = CACHE / f"serve-{args.tag.rsplit(':', 1)[-1]}.log"
        payload = json.dumps({"image": asdict(image), "chart": asdict(chart), "root": str(root), "log": str(log)})
        done = subprocess.run(
            ["unshare", "--mount", "--net", "--propagation", "private", sys.executable, __file__, "--runtime", payload],
            check=False, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            res.add("runtime", False, f"the runtime checks exited {done.returncode}; service log: {log}")
        else:
            res.items.extend(Result(**r) for r in json.loads(lines[-1]))
            if any(not r["ok"] for r in json.loads(lines[-1])):
                print(f"image-check: service log {log}:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        podman("image", "unmount", args.tag)
        release_storage()
    passed = len(res.items) - res.failed
    print(f"image-check: {args.tag}, {time.monotonic() - started:.0f} s in all")
    print(f"image-check: {passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
