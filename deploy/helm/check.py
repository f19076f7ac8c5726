#!/usr/bin/env python3
"""Offline checks of the gatewaycerts Helm chart (`make helm-check`): no helm binary, no cluster, no network.

For every good values file in ci/*.yaml:
  - `helm lint --strict` (Helm's Go SDK, through helm-python-sdk) reports no warning or error;
  - the chart renders (schema validation included, as `helm template`/`helm install` do);
  - every rendered manifest validates against the Kubernetes JSON schemas of several Kubernetes versions in
    strict mode (kubernetes-validate: unknown fields fail); the ServiceMonitor, a CRD, against
    schemas/servicemonitor-monitoring-v1.json;
  - the Deployment keeps its security posture and availability settings, and no rendered object carries a
    literal secret.
For every file in ci/broken/*.yaml (first line `# expect-error: TEXT`): rendering must fail, with TEXT in the
message, either in the values schema or in a template `fail`; a schema failure must also fail the lint.

Prints one line per file and exits non-zero if a good file fails or a broken file passes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE / "gatewaycerts"
CI = HERE / "ci"
SERVICEMONITOR_SCHEMA = HERE / "schemas" / "servicemonitor-monitoring-v1.json"
RELEASE = "gatewaycerts"
NAMESPACE = "gatewaycerts"
# The oldest version Chart.yaml's kubeVersion admits, a middle one, and the newest kubernetes-validate bundles.
KUBE_VERSIONS = ("1.29.0", "1.33.0", "1.37.0")
CHART_DEFAULT_FILE = "required.yaml"  # the chart defaults plus only the values an install cannot do without
EXAMPLE = "sync-agent-example"  # app.kubernetes.io/component of the optional example gateway pod

# Strings that must never appear in a rendered object: the chart only names Secrets.
SECRET_PATTERNS = (
    re.compile(r"mongodb(\+srv)?://", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]+-----"),
    re.compile(r"\b[\w.-]+:[A-Za-z0-9+/]{43}="),  # a KEK entry, ID:BASE64(32 bytes)
)
SECRET_ENV_NAMES = re.compile(r"(DATABASE_URL|_KEK$|PASSWORD|SECRET|TOKEN|PRIVATE_KEY)", re.IGNORECASE)


class CheckFailed(Exception):
    """A good file failed, or a broken file did not fail the expected way."""


# --- helpers ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def captured_stderr_fd() -> Iterator[list[str]]:
    """Capture what the native library writes to file descriptor 2 (Go's log), e.g. lint-mode `fail` lines."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())


def load_values(path: Path) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CheckFailed(f"not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise CheckFailed(f"{path.name}: a values file must be a mapping")
    return values


def expected_error(path: Path) -> str:
    first = next(iter(path.read_text().splitlines()), "")
    match = re.match(r"#\s*expect-error:\s*(.+?)\s*$", first)
    if not match:
        raise CheckFailed(f"{path.name}: first line must be '# expect-error: <text of the expected error>'")
    return match.group(1)


def lint(values: dict[str, Any], kube_version: str) -> tuple[list[str], list[str]]:
    """helm lint --strict; returns (problems, lines Helm logged). Infos (e.g. 'icon is recommended') are not
    problems; warnings and errors are."""
    with captured_stderr_fd() as logged:
        report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}")
    problems = [f"[{m['path']}] {m['error'].strip()}" for m in report["messages"] if m["severity"] >= 2]
    if not problems:
        problems = [e.strip() for e in report["errors"]]
    return problems, logged


def render(chart: helm.Chart, values: dict[str, Any]) -> dict[str, str]:
    return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((template, doc))
    return docs


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


# --- validation ---------------------------------------------------------------------------------------------


def validate_manifest(doc: dict[str, Any], servicemonitor_schema: dict[str, Any]) -> None:
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    if doc.get("apiVersion") == "monitoring.coreos.com/v1" and doc.get("kind") == "ServiceMonitor":
        try:
            jsonschema.Draft7Validator(servicemonitor_schema).validate(doc)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path)
            raise CheckFailed(f"{where} invalid against the ServiceMonitor schema: {path}: {exc.message}") from None
        return
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise CheckFailed(f"{where} invalid for Kubernetes {exc.version} (strict): {path}: {exc.message}") from None
        except kubernetes_validate.SchemaNotFoundError as exc:
            raise CheckFailed(f"{where}: {exc.message}") from None


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    if len(found) != 1:
        raise CheckFailed(f"expected exactly one {kind}, rendered {len(found)}")
    return found[0]


def assert_posture(docs: list[dict[str, Any]], rendered: dict[str, str]) -> None:
    """What a platform team checks before letting the Deployment in, beyond schema validity."""
    problems: list[str] = []

    def need(ok: Any, message: str) -> None:
        if not ok:
            problems.append(message)

    kinds = Counter(d["kind"] for d in docs)
    need(kinds["Secret"] == 0, "the chart must create no Secret")
    every_doc = docs
    # The optional example gateway pod (syncAgentExample) has its own checks; the rest are the service's.
    examples = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == EXAMPLE]
    docs = [d for d in docs if d not in examples]
    problems.extend(example_problems(examples))
    deployment = one(docs, "Deployment")
    config = one(docs, "ConfigMap")["data"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    name = deployment["metadata"]["name"]

    # Security context.
    psc = pod.get("securityContext", {})
    need(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
    need(psc.get("runAsUser", 1) != 0 and psc.get("runAsGroup", 1) != 0, "pod must not run as UID/GID 0")
    need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile must be RuntimeDefault")
    csc = container.get("securityContext", {})
    need(csc.get("allowPrivilegeEscalation") is False, "container allowPrivilegeEscalation must be false")
    need(csc.get("readOnlyRootFilesystem") is True, "container readOnlyRootFilesystem must be true")
    need(csc.get("privileged", False) is False, "container must not be privileged")
    need("ALL" in csc.get("capabilities", {}).get("drop", []), "container must drop ALL capabilities")
    need(not csc.get("capabilities", {}).get("add"), "container must add no capability")
    need(pod.get("automountServiceAccountToken") is False, "automountServiceAccountToken must be false")
    need(pod.get("enableServiceLinks") is False, "enableServiceLinks must be false (GATEWAYCERTS_PORT clash)")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        need(not pod.get(flag), f"{flag} must be off")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    need(not any("hostPath" in v for v in volumes.values()), "no hostPath volume")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for path in ("/var/lib/gatewaycerts", "/tmp"):  # noqa: S108 (paths inside the pod, not used here)
        mount = mounts.get(path)
        need(mount and "emptyDir" in volumes.get(mount["name"], {}), f"{path} must be an emptyDir mount")
    need(not container["image"].endswith(":latest"), "image must not be :latest")

    # Probes.
    def probe_path(kind: str) -> str | None:
        return container.get(kind, {}).get("httpGet", {}).get("path")

    need(probe_path("livenessProbe") == "/healthz", "livenessProbe must GET /healthz")
    need(probe_path("readinessProbe") == "/readyz", "readinessProbe must GET /readyz")
    need(probe_path("startupProbe") == "/healthz", "startupProbe must GET /healthz")
    startup = container.get("startupProbe", {})
    need(startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10) >= 60, "startupProbe must allow 60 s")
    need(
        any(p.get("containerPort") == 8080 and p.get("name") == "http" for p in container.get("ports", [])),
        "container port 8080 named http",
    )

    # Rollout, shutdown, availability.
    strategy = deployment["spec"].get("strategy", {})
    need(strategy.get("type") == "RollingUpdate", "strategy must be RollingUpdate")
    need(strategy.get("rollingUpdate", {}).get("maxUnavailable") == 0, "rollingUpdate.maxUnavailable must be 0")
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    need(len(pre_stop) == 2 and pre_stop[0] == "sleep" and pre_stop[1].isdigit(), "preStop must be ['sleep', N]")
    sleep = int(pre_stop[1]) if len(pre_stop) == 2 and pre_stop[1].isdigit() else 0
    shutdown = int(config.get("GATEWAYCERTS_SHUTDOWN_TIMEOUT", "0"))
    need(
        pod.get("terminationGracePeriodSeconds", 30) > sleep + shutdown,
        f"terminationGracePeriodSeconds must exceed preStop {sleep} s + shutdown timeout {shutdown} s",
    )
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and d["spec"]["scaleTargetRef"]["name"] == name]
    if hpas:
        need("replicas" not in deployment["spec"], "with an HPA the Deployment must leave spec.replicas to it")
        floor = hpas[0]["spec"].get("minReplicas", 1)
    else:
        floor = deployment["spec"].get("replicas", 1)
    need(floor >= 2, f"at least 2 replicas (Deployment replicas or HPA minReplicas), got {floor}")
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        min_available = pdb["spec"].get("minAvailable")
        if isinstance(min_available, int):
            need(min_available < floor, f"PDB minAvailable {min_available} must be below {floor} replicas")
    need(
        pod.get("topologySpreadConstraints") or pod.get("affinity", {}).get("podAntiAffinity"),
        "pods must be spread over nodes (topologySpreadConstraints or podAntiAffinity)",
    )

    # Configuration: the ConfigMap rolls the pods, dev keys are off, secrets come from Secrets.
    configmap_text = rendered[f"{CHART.name}/templates/configmap.yaml"]
    checksum = deployment["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/config")
    need(checksum == hashlib.sha256(configmap_text.encode()).hexdigest(), "checksum/config must hash the ConfigMap")
    need(config.get("GATEWAYCERTS_ALLOW_DEV_KEYS") == "false", "GATEWAYCERTS_ALLOW_DEV_KEYS must be 'false'")
    need(config.get("GATEWAYCERTS_HOST") == "0.0.0.0", "GATEWAYCERTS_HOST must be 0.0.0.0")  # noqa: S104
    need(config.get("GATEWAYCERTS_PORT") == "8080", "GATEWAYCERTS_PORT must be 8080")
    workers = config.get("GATEWAYCERTS_WORKERS", "")
    need(workers.isdigit() and int(workers) >= 1, f"GATEWAYCERTS_WORKERS must be a count >= 1, got {workers!r}")
    need(config.get("GATEWAYCERTS_STATE_DIR") == "/var/lib/gatewaycerts", "GATEWAYCERTS_STATE_DIR")
    need(
        bool(config.get("GATEWAYCERTS_JWT_JWKS_URL")) != bool(config.get("GATEWAYCERTS_JWT_PUBLIC_KEY_FILE")),
        "exactly one JWT key source",
    )
    for key in ("GATEWAYCERTS_DATABASE_URL", "GATEWAYCERTS_KEK"):
        need(key not in config, f"{key} must not be in the ConfigMap")
    env = {e["name"]: e for e in container.get("env", [])}
    db = env.get("GATEWAYCERTS_DATABASE_URL", {})
    need("secretKeyRef" in db.get("valueFrom", {}) and "value" not in db, "DATABASE_URL must come from secretKeyRef")
    for var in container.get("env", []):
        if "value" in var and SECRET_ENV_NAMES.search(var["name"]):
            problems.append(f"env {var['name']} has a literal value: secrets come from secretKeyRef")
    for key, path_var in (("kek", "GATEWAYCERTS_KEK_FILE"), ("jwt-public-key", "GATEWAYCERTS_JWT_PUBLIC_KEY_FILE")):
        file = config.get(path_var)
        if not file and key == "jwt-public-key":
            continue
        mount = next((m for m in mounts.values() if file and file.startswith(m["mountPath"] + "/")), None)
        need(
            mount and mount.get("readOnly") is True and "secret" in volumes.get(mount["name"], {}),
            f"{path_var}={file} must be a read-only mounted Secret file",
        )
    for doc in every_doc:
        for text in strings(doc):
            for pattern in SECRET_PATTERNS:
                if pattern.search(text):  # the text itself is not printed: it may be a real secret
                    where = f"{doc['kind']}/{doc['metadata']['name']}"
                    problems.append(f"{where} has a literal secret (/{pattern.pattern}/)")
    if problems:
        raise CheckFailed("; ".join(problems))


def example_problems(docs: list[dict[str, Any]]) -> list[str]:
    """The example gateway pod: every container restricted, the gateway key only from a Secret, the agent
    started once before NGINX and then beside it with a reload command."""
    if not docs:
        return []
    problems: list[str] = []
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("runAsUser", 0) == 0:
        problems.append("example pod must run as a non-root UID")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("example pod: automountServiceAccountToken must be false")
    containers = pod.get("initContainers", []) + pod["containers"]
    for container in containers:
        csc = container.get("securityContext", {})
        if not (
            csc.get("allowPrivilegeEscalation") is False
            and csc.get("readOnlyRootFilesystem") is True
            and "ALL" in csc.get("capabilities", {}).get("drop", [])
        ):
            problems.append(f"example container {container['name']} must be restricted")
    agents = [c for c in containers if c.get("args", [])[:1] == ["sync"]]
    if len(agents) != 2 or "--once" not in agents[0]["args"] or "--on-change" not in agents[1]["args"]:
        problems.append("example: an init container `sync --once` and a sidecar `sync --on-change ...`")
    for agent in agents:
        key = {e["name"]: e for e in agent.get("env", [])}.get("GATEWAYCERTS_GATEWAY_KEY", {})
        if "secretKeyRef" not in key.get("valueFrom", {}) or "value" in key:
            problems.append(f"example {agent['name']}: GATEWAYCERTS_GATEWAY_KEY must come from secretKeyRef")
    return problems


def undocumented_values(chart: helm.Chart) -> list[str]:
    """Values of values.yaml without a row in the chart README's table (a row for a prefix covers its keys)."""
    documented: set[str] = set()
    for match in re.finditer(r"^\| `([^`]+)` \|", (CHART / "README.md").read_text(), re.MULTILINE):
        key = match.group(1)
        braces = re.fullmatch(r"(.*)\{([^}]+)\}", key)  # probes.startup.{periodSeconds,...}
        if braces:
            documented.update(braces.group(1) + leaf for leaf in braces.group(2).split(","))
        else:
            documented.add(key)

    def leaves(node: Any, prefix: str) -> Iterator[str]:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                yield from leaves(value, f"{prefix}.{key}" if prefix else key)
        else:
            yield prefix

    def covered(path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:n]) in documented for n in range(1, len(parts) + 1))

    return [path for path in leaves(chart.values, "") if not covered(path)]


# --- the two kinds of file ----------------------------------------------------------------------------------


def check_good(chart: helm.Chart, path: Path, servicemonitor_schema: dict[str, Any]) -> str:
    values = load_values(path)
    for version in KUBE_VERSIONS:
        problems, logged = lint(values, version)
        fails = [line for line in logged if "funcMap fail" in line]
        if problems or fails:
            raise CheckFailed(f"helm lint --strict (Kubernetes {version}): {'; '.join(problems + fails)}")
    try:
        rendered = render(chart, values)
    except helm.HelmError as exc:
        raise CheckFailed(f"render failed: {exc}") from None
    if not rendered.get(f"{CHART.name}/templates/NOTES.txt", "").strip():
        raise CheckFailed("NOTES.txt rendered empty")
    docs = manifests(rendered)
    for _, doc in docs:
        validate_manifest(doc, servicemonitor_schema)
    objects = [doc for _, doc in docs]
    assert_posture(objects, rendered)
    kinds = Counter(doc["kind"] for doc in objects)
    summary = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    versions = "/".join(v.rsplit(".", 1)[0] for v in KUBE_VERSIONS)
    crd = "; ServiceMonitor against its CRD subset" if kinds["ServiceMonitor"] else ""
    return f"lint clean, {len(objects)} manifests valid (Kubernetes {versions} strict{crd}), posture ok: {summary}"


def check_broken(chart: helm.Chart, path: Path) -> str:
    expected = expected_error(path)
    values = load_values(path)
    try:
        render(chart, values)
    except helm.HelmValuesError as exc:
        stage, message = "values schema", str(exc)
    except helm.HelmRenderError as exc:
        stage, message = "template fail", str(exc)
    except helm.HelmError as exc:
        raise CheckFailed(f"failed, but not in the schema or a template fail: {type(exc).__name__}: {exc}") from None
    else:
        raise CheckFailed(f"rendered without error, expected a failure containing {expected!r}")
    if expected not in message:
        raise CheckFailed(f"failed ({stage}) without {expected!r} in the message: {message.strip()}")
    # Lint must agree. Helm's lint mode turns a template `fail` into a log line rather than an error (by design,
    # helm/helm#8973), so for those the message must be in what lint logged; schema errors are lint errors.
    problems, logged = lint(values, KUBE_VERSIONS[-1])
    if stage == "values schema" and not any(expected in p for p in problems):
        raise CheckFailed(f"rendering failed but helm lint --strict did not report {expected!r}")
    if stage == "template fail" and not any(expected in line for line in logged):
        raise CheckFailed(f"rendering failed but helm lint did not log the fail message {expected!r}")
    short = " ".join(message.split())
    short = short.split("gatewaycerts: - ", 1)[-1] if stage == "values schema" else short.split("): ", 1)[-1]
    return f"rejected as expected ({stage}): {short}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="values files (default: ci/*.yaml and ci/broken/*.yaml)")
    args = parser.parse_args()
    started = time.monotonic()
    # The default render first, then the other good files, then the broken ones.
    good = sorted(CI.glob("*.yaml"), key=lambda p: (p.name != CHART_DEFAULT_FILE, p.name))
    broken = sorted((CI / "broken").glob("*.yaml"))
    if args.files:
        chosen = {p.resolve() for p in args.files}
        unknown = chosen - {p.resolve() for p in good + broken}
        if unknown:
            print(f"FAIL  not a values file under {CI}: {', '.join(sorted(map(str, unknown)))}")
            return 1
        good = [p for p in good if p.resolve() in chosen]
        broken = [p for p in broken if p.resolve() in chosen]
    if not args.files and (CI / CHART_DEFAULT_FILE) not in good:
        print(f"FAIL  ci/{CHART_DEFAULT_FILE} is missing")
        return 1

    print(
        f"helm-check: chart {CHART.relative_to(HERE.parent.parent)}, Helm SDK {helm.helm_sdk_version()} "
        f"(helm-python-sdk {helm.__version__}), kubernetes-validate {kubernetes_validate.__version__}"
    )
    failures = passed = 0
    with helm.Chart.load(CHART) as chart:
        meta = chart.metadata
        if meta.get("dependencies") or chart.dependencies:
            print("FAIL  Chart.yaml: the chart must pull in no dependencies")
            failures += 1
        if chart.schema is None:
            print("FAIL  values.schema.json: missing")
            failures += 1
        missing = undocumented_values(chart)
        if missing:
            print(f"FAIL  gatewaycerts/README.md: values without a row in the table: {', '.join(missing)}")
            failures += 1
        servicemonitor_schema = json.loads(SERVICEMONITOR_SCHEMA.read_text())
        jsonschema.Draft7Validator.check_schema(servicemonitor_schema)
        for path, check in [(p, "good") for p in good] + [(p, "broken") for p in broken]:
            label = path.relative_to(HERE)
            try:
                if check == "good":
                    detail = check_good(chart, path, servicemonitor_schema)
                else:
                    detail = check_broken(chart, path)
            except CheckFailed as exc:
                failures += 1
                print(f"FAIL  {label}: {exc}")
            else:
                passed += 1
                print(f"ok    {label}: {detail}")
    print(
        f"helm-check: {len(good)} good files rendered and validated, {len(broken)} broken files expected to fail, "
        f"{time.monotonic() - started:.1f} s"
    )
    print(f"helm-check: {passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
