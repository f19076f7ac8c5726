"""One frozen Settings object, read from GATEWAYCERTS_* environment variables and validated at start."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Option:
    env: str
    attr: str
    default: str | None
    help: str
    secret: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("GATEWAYCERTS_HOST", "host", "127.0.0.1", "Address to listen on."),
    Option("GATEWAYCERTS_PORT", "port", "8080", "TCP port to listen on."),
    Option(
        "GATEWAYCERTS_STATE_DIR",
        "state_dir",
        "./.gatewaycerts",
        "Directory for the embedded SQLite store and the dev keys (dev JWT key, dev KEK).",
    ),
    Option(
        "GATEWAYCERTS_DATABASE_URL",
        "database_url",
        None,
        "`mongodb://...`/`mongodb+srv://...` for MongoDB, `sqlite:///path` for the embedded store; "
        "default: SQLite at STATE_DIR/gatewaycerts.db.",
        secret=True,
    ),
    Option(
        "GATEWAYCERTS_MONGODB_DATABASE",
        "mongodb_database",
        "gatewaycerts",
        "MongoDB database name when the URL names none.",
    ),
    Option(
        "GATEWAYCERTS_JWT_JWKS_URL",
        "jwt_jwks_url",
        None,
        "JWKS endpoint whose keys verify tokens (refetched every 5 minutes).",
    ),
    Option(
        "GATEWAYCERTS_JWT_PUBLIC_KEY_FILE",
        "jwt_public_key_file",
        None,
        "PEM public key (RSA, EC P-256 or Ed25519) that verifies tokens.",
    ),
    Option(
        "GATEWAYCERTS_JWT_ALGORITHMS",
        "jwt_algorithms",
        "RS256,ES256,EdDSA",
        "Accepted JWT signature algorithms (subset of RS256, ES256, EdDSA).",
    ),
    Option("GATEWAYCERTS_JWT_ISSUER", "jwt_issuer", None, "Required `iss` claim, if set."),
    Option("GATEWAYCERTS_JWT_AUDIENCE", "jwt_audience", None, "Required `aud` claim, if set."),
    Option(
        "GATEWAYCERTS_KEK_FILE",
        "kek_file",
        None,
        "File of key-encryption keys, one `ID:BASE64(32 bytes)` per line; the last one encrypts.",
        secret=True,
    ),
    Option(
        "GATEWAYCERTS_KEK",
        "kek",
        None,
        "Key-encryption keys inline, `ID:BASE64` separated by commas; the last one encrypts.",
        secret=True,
    ),
    Option(
        "GATEWAYCERTS_PUBLIC_URL",
        "public_url",
        None,
        "External base URL of the service: CRL distribution points and Authority Information Access (OCSP, "
        "CA issuers) in issued certificates point here; default http://HOST:PORT (set it in production, "
        "before issuing).",
    ),
    Option(
        "GATEWAYCERTS_OCSP_SIGNER",
        "ocsp_signer",
        "ca",
        "Who signs OCSP responses: `ca` (the CA's own key) or `delegated` (a 4-day OCSP responder certificate "
        "each CA issues itself and replaces 2 days before it expires; docs/security.md).",
    ),
    Option(
        "GATEWAYCERTS_OCSP_VALIDITY_HOURS",
        "ocsp_validity_hours",
        "24",
        "nextUpdate - thisUpdate of an OCSP response, 1-168 hours; a response is re-signed after half of it.",
    ),
    Option("GATEWAYCERTS_MAX_BODY_BYTES", "max_body_bytes", "524288", "Largest accepted request body."),
    Option(
        "GATEWAYCERTS_RSA_KEY_CHECK",
        "rsa_key_check",
        "arithmetic",
        "How an uploaded RSA key is proven sound: `arithmetic` (CRT identities and a signature round trip, "
        "docs/security.md) or `openssl` (adds OpenSSL's full check with primality tests: ~100x slower).",
    ),
    Option("GATEWAYCERTS_LOG_LEVEL", "log_level", "INFO", "Log level: DEBUG, INFO, WARNING or ERROR."),
    Option(
        "GATEWAYCERTS_LOG_FORMAT",
        "log_format",
        "text",
        "`text` (one readable line per record) or `json` (one JSON object per line, with the request id).",
    ),
    Option(
        "GATEWAYCERTS_ALLOW_DEV_KEYS",
        "allow_dev_keys",
        "true",
        "`false` refuses to start without real key-encryption keys and a real JWT key source "
        "(production), instead of falling back to the development keys in STATE_DIR.",
    ),
    Option(
        "GATEWAYCERTS_METRICS_ENABLED",
        "metrics_enabled",
        "true",
        "Serve Prometheus metrics at `GET /metrics` (no token: restrict it at the network level).",
    ),
    Option(
        "GATEWAYCERTS_ORDER_WORKER",
        "order_worker",
        "true",
        "Process Barbican-style orders in this process (every replica may; each order is processed once).",
    ),
    Option(
        "GATEWAYCERTS_ORDER_POLL_MS",
        "order_poll_ms",
        "1000",
        "How often an idle order worker looks for orders created by other replicas or left by a stopped one.",
    ),
    Option(
        "GATEWAYCERTS_OUTBOUND_ALLOWED_CIDRS",
        "outbound_allowed_cidrs",
        None,
        "Networks outbound connections (ACME CAs, DNS update servers) may reach besides public unicast "
        "addresses, as CIDRs separated by commas (e.g. `127.0.0.0/8` in tests); loopback, private and "
        "link-local addresses are refused without it.",
    ),
    Option(
        "GATEWAYCERTS_ACME_CA_BUNDLE",
        "acme_ca_bundle",
        None,
        "PEM file of the CA certificates the ACME client trusts for its CAs' HTTPS (default: the system's).",
    ),
    Option(
        "GATEWAYCERTS_RENEWAL_WORKER",
        "renewal_worker",
        "true",
        "Run the renewal loop of managed certificates in this process (every replica may; each renewal happens "
        "once, docs/renewal.md).",
    ),
    Option(
        "GATEWAYCERTS_RENEWAL_POLL_SECONDS",
        "renewal_poll_seconds",
        "30",
        "How often an idle renewal loop looks for due certificates (a create or a renew action wakes it at once "
        "in its own process).",
    ),
    Option(
        "GATEWAYCERTS_RENEWAL_LEASE_SECONDS",
        "renewal_lease_seconds",
        "600",
        "How long a replica's claim on one renewal holds; a renewal abandoned by a stopped replica is taken up "
        "again after it.",
    ),
    Option(
        "GATEWAYCERTS_RENEWAL_CONCURRENCY",
        "renewal_concurrency",
        "4",
        "Renewals one process runs at the same time.",
    ),
    Option(
        "GATEWAYCERTS_RENEWAL_BACKOFF_SECONDS",
        "renewal_backoff_seconds",
        "60",
        "The wait after a first failed attempt; it doubles with each further failure (with jitter).",
    ),
    Option(
        "GATEWAYCERTS_RENEWAL_BACKOFF_MAX_SECONDS",
        "renewal_backoff_max_seconds",
        "21600",
        "The longest wait between failed attempts.",
    ),
    Option(
        "GATEWAYCERTS_DELIVERY_POLL_MS",
        "delivery_poll_ms",
        "250",
        "How often each process reads the change counters of the projects it delivers to gateways, so a change "
        "made through another replica reaches its long polls and handshakes (docs/api/gateway.md).",
    ),
    Option(
        "GATEWAYCERTS_NOTIFICATION_WORKER",
        "notification_worker",
        "true",
        "Deliver webhook events and run the expiry watch in this process (every replica may; each delivery "
        "attempt and each expiry event happens once).",
    ),
    Option(
        "GATEWAYCERTS_WEBHOOK_ALLOWED_TARGETS",
        "webhook_allowed_targets",
        None,
        "CIDRs (comma-separated) webhooks may call besides public unicast addresses, e.g. `10.0.0.0/8` for "
        "receivers inside the cluster; loopback, link-local and private ranges are refused without it.",
    ),
    Option(
        "GATEWAYCERTS_WEBHOOK_RETRY_SCHEDULE",
        "webhook_retry_schedule",
        "5,300,1800,7200,18000,36000,36000",
        "Seconds to wait before each retry of a failed webhook delivery (one attempt more than entries: by "
        "default 8 attempts over about 28 hours, Standard Webhooks' schedule).",
    ),
    Option(
        "GATEWAYCERTS_WEBHOOK_TIMEOUT",
        "webhook_timeout",
        "10",
        "Seconds one webhook attempt may take (connecting: at most half of it); longer counts as failed.",
    ),
    Option(
        "GATEWAYCERTS_WEBHOOK_POLL_MS",
        "webhook_poll_ms",
        "1000",
        "How often an idle webhook worker looks for deliveries that are due (new events wake it at once).",
    ),
    Option(
        "GATEWAYCERTS_EXPIRY_WATCH_SECONDS",
        "expiry_watch_seconds",
        "300",
        "How often the expiry watch looks for certificates that crossed 30, 7 or 1 days before not_after, or expired.",
    ),
    Option(
        "GATEWAYCERTS_WORKERS",
        "workers",
        "1",
        "Server processes behind the one port (SO_REUSEPORT), each with its own event loop; `0` or `auto`: one "
        "per CPU this process may use. `1` serves in a single process. Overridden by `serve --workers N`.",
    ),
    Option(
        "GATEWAYCERTS_EVENT_LOOP",
        "event_loop",
        "auto",
        "`uvloop` (libuv's event loop: cheaper socket I/O per request), `asyncio` (the standard one), or `auto`: "
        "uvloop where it is installed.",
    ),
    Option(
        "GATEWAYCERTS_SHUTDOWN_TIMEOUT",
        "shutdown_timeout",
        "25",
        "Seconds that in-flight requests get to finish after SIGTERM before connections are closed.",
    ),
    Option(
        "GATEWAYCERTS_TLS_CERT_FILE",
        "tls_cert_file",
        None,
        "PEM certificate chain (leaf first) the service serves HTTPS with; set with GATEWAYCERTS_TLS_KEY_FILE "
        "(both or neither). Unset: plain HTTP (behind a TLS-terminating proxy).",
    ),
    Option(
        "GATEWAYCERTS_TLS_KEY_FILE",
        "tls_key_file",
        None,
        "PEM private key (unencrypted) of GATEWAYCERTS_TLS_CERT_FILE.",
        secret=True,
    ),
    Option(
        "GATEWAYCERTS_ACME_HTTP_PORT",
        "acme_http_port",
        "80",
        "Port the ACME server's http-01 validator connects to (RFC 8555 says 80; other values for tests).",
    ),
    Option(
        "GATEWAYCERTS_ACME_TLS_PORT",
        "acme_tls_port",
        "443",
        "Port the ACME server's tls-alpn-01 validator connects to (RFC 8737 says 443; other values for tests).",
    ),
    Option(
        "GATEWAYCERTS_ACME_RESOLVER",
        "acme_resolver",
        None,
        "`IP:PORT` (`[v6]:PORT`; port 53 if omitted) of the DNS server the ACME validator asks for dns-01 TXT "
        "records and http-01/tls-alpn-01 addresses; default the system's resolver.",
    ),
    Option(
        "GATEWAYCERTS_ACME_ALLOWED_TARGETS",
        "acme_allowed_targets",
        None,
        "CIDRs, comma-separated, that the ACME validator may connect to beyond public unicast addresses (by "
        "default it refuses loopback, private, link-local, shared and reserved ranges), e.g. `127.0.0.0/8`.",
    ),
)

ALLOWED_JWT_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
RSA_KEY_CHECKS = ("arithmetic", "openssl")
OCSP_SIGNERS = ("ca", "delegated")
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
MAX_WORKERS = 256
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path = Path("./.gatewaycerts")
    database_url: str | None = None
    mongodb_database: str = "gatewaycerts"
    jwt_jwks_url: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    kek_file: Path | None = None
    kek: str | None = None
    public_url: str | None = None
    max_body_bytes: int = 524288
    ocsp_signer: str = "ca"
    ocsp_validity_hours: int = 24
    rsa_key_check: str = "arithmetic"
    log_level: str = "INFO"
    log_format: str = "text"
    allow_dev_keys: bool = True
    metrics_enabled: bool = True
    order_worker: bool = True
    order_poll_ms: int = 1000
    delivery_poll_ms: int = 250
    outbound_allowed_cidrs: str | None = None
    acme_ca_bundle: str | None = None
    renewal_worker: bool = True
    renewal_poll_seconds: int = 30
    renewal_lease_seconds: int = 600
    renewal_concurrency: int = 4
    renewal_backoff_seconds: int = 60
    renewal_backoff_max_seconds: int = 21600
    notification_worker: bool = True
    webhook_allowed_targets: tuple[str, ...] = ()
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_timeout: int = 10
    webhook_poll_ms: int = 1000
    expiry_watch_seconds: int = 300
    workers: int = 1
    event_loop: str = "auto"
    shutdown_timeout: int = 25
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    acme_http_port: int = 80
    acme_tls_port: int = 443
    acme_resolver: tuple[str, int] | None = None
    acme_allowed_targets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        secret = {o.attr for o in OPTIONS if o.secret}
        shown = ", ".join(
            f"{f.name}={'***' if f.name in secret and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"

    @property
    def uses_dev_jwt_key(self) -> bool:
        return not self.jwt_jwks_url and not self.jwt_public_key_file

    @property
    def sqlite_path(self) -> Path | None:
        url = self.database_url
        if not url:
            return self.state_dir / "gatewaycerts.db"
        if url.startswith("sqlite:///"):
            return Path(url[len("sqlite:///") :] or "gatewaycerts.db")
        return None

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw = {o.attr: env.get(o.env, o.default) for o in OPTIONS}
        raw = {k: (v if v not in ("",) else None) for k, v in raw.items()}

        def integer(name: str, env_name: str, low: int, high: int) -> int:
            try:
                value = int(str(raw[name]))
            except ValueError:
                raise SettingsError(f"{env_name} must be an integer, got {raw[name]!r}") from None
            if not low <= value <= high:
                raise SettingsError(f"{env_name} must be between {low} and {high}")
            return value

        def boolean(name: str, env_name: str) -> bool:
            value = str(raw[name]).strip().lower()
            if value not in _BOOLEANS:
                raise SettingsError(f"{env_name} must be true or false, got {raw[name]!r}")
            return _BOOLEANS[value]

        def choice(name: str, env_name: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
            value = str(raw[name]).strip()
            value = value.upper() if upper else value.lower()
            if value not in allowed:
                raise SettingsError(f"{env_name} must be one of {', '.join(allowed)}, got {raw[name]!r}")
            return value

        algorithms = tuple(a.strip() for a in str(raw["jwt_algorithms"] or "").split(",") if a.strip())
        bad = [a for a in algorithms if a not in ALLOWED_JWT_ALGORITHMS]
        if bad or not algorithms:
            raise SettingsError(f"GATEWAYCERTS_JWT_ALGORITHMS must be a subset of RS256,ES256,EdDSA; got {bad}")
        url = raw["database_url"]
        if url and not url.startswith(("mongodb://", "mongodb+srv://", "sqlite:///")):
            raise SettingsError("GATEWAYCERTS_DATABASE_URL must start with mongodb://, mongodb+srv:// or sqlite:///")
        if raw["jwt_jwks_url"] and not str(raw["jwt_jwks_url"]).startswith(("https://", "http://")):
            raise SettingsError("GATEWAYCERTS_JWT_JWKS_URL must be an http(s) URL")
        key_file = Path(raw["jwt_public_key_file"]) if raw["jwt_public_key_file"] else None
        if key_file is not None and not key_file.is_file():
            raise SettingsError(f"GATEWAYCERTS_JWT_PUBLIC_KEY_FILE {key_file} does not exist")
        kek_file = Path(raw["kek_file"]) if raw["kek_file"] else None
        if kek_file is not None and not kek_file.is_file():
            raise SettingsError(f"GATEWAYCERTS_KEK_FILE {kek_file} does not exist")
        tls_cert = Path(raw["tls_cert_file"]) if raw["tls_cert_file"] else None
        tls_key = Path(raw["tls_key_file"]) if raw["tls_key_file"] else None
        if (tls_cert is None) != (tls_key is None):
            raise SettingsError("GATEWAYCERTS_TLS_CERT_FILE and GATEWAYCERTS_TLS_KEY_FILE must be set together")
        for path, name in ((tls_cert, "GATEWAYCERTS_TLS_CERT_FILE"), (tls_key, "GATEWAYCERTS_TLS_KEY_FILE")):
            if path is not None and not path.is_file():
                raise SettingsError(f"{name} {path} does not exist")
        return cls(
            host=str(raw["host"]),
            port=integer("port", "GATEWAYCERTS_PORT", 0, 65535),
            state_dir=Path(str(raw["state_dir"])),
            database_url=url,
            mongodb_database=str(raw["mongodb_database"]),
            jwt_jwks_url=raw["jwt_jwks_url"],
            jwt_public_key_file=key_file,
            jwt_algorithms=algorithms,
            jwt_issuer=raw["jwt_issuer"],
            jwt_audience=raw["jwt_audience"],
            kek_file=kek_file,
            kek=raw["kek"],
            public_url=raw["public_url"],
            max_body_bytes=integer("max_body_bytes", "GATEWAYCERTS_MAX_BODY_BYTES", 1024, 64 * 1024 * 1024),
            ocsp_signer=choice("ocsp_signer", "GATEWAYCERTS_OCSP_SIGNER", OCSP_SIGNERS),
            ocsp_validity_hours=integer("ocsp_validity_hours", "GATEWAYCERTS_OCSP_VALIDITY_HOURS", 1, 168),
            rsa_key_check=choice("rsa_key_check", "GATEWAYCERTS_RSA_KEY_CHECK", RSA_KEY_CHECKS),
            log_level=choice("log_level", "GATEWAYCERTS_LOG_LEVEL", LOG_LEVELS, upper=True),
            log_format=choice("log_format", "GATEWAYCERTS_LOG_FORMAT", LOG_FORMATS),
            allow_dev_keys=boolean("allow_dev_keys", "GATEWAYCERTS_ALLOW_DEV_KEYS"),
            metrics_enabled=boolean("metrics_enabled", "GATEWAYCERTS_METRICS_ENABLED"),
            order_worker=boolean("order_worker", "GATEWAYCERTS_ORDER_WORKER"),
            order_poll_ms=integer("order_poll_ms", "GATEWAYCERTS_ORDER_POLL_MS", 10, 600000),
            delivery_poll_ms=integer("delivery_poll_ms", "GATEWAYCERTS_DELIVERY_POLL_MS", 50, 60000),
            outbound_allowed_cidrs=raw["outbound_allowed_cidrs"],
            acme_ca_bundle=raw["acme_ca_bundle"],
            renewal_worker=boolean("renewal_worker", "GATEWAYCERTS_RENEWAL_WORKER"),
            renewal_poll_seconds=integer("renewal_poll_seconds", "GATEWAYCERTS_RENEWAL_POLL_SECONDS", 1, 3600),
            renewal_lease_seconds=integer("renewal_lease_seconds", "GATEWAYCERTS_RENEWAL_LEASE_SECONDS", 30, 86400),
            renewal_concurrency=integer("renewal_concurrency", "GATEWAYCERTS_RENEWAL_CONCURRENCY", 1, 64),
            renewal_backoff_seconds=integer(
                "renewal_backoff_seconds", "GATEWAYCERTS_RENEWAL_BACKOFF_SECONDS", 1, 86400
            ),
            renewal_backoff_max_seconds=integer(
                "renewal_backoff_max_seconds", "GATEWAYCERTS_RENEWAL_BACKOFF_MAX_SECONDS", 1, 7 * 86400
            ),
            notification_worker=boolean("notification_worker", "GATEWAYCERTS_NOTIFICATION_WORKER"),
            webhook_allowed_targets=parse_cidrs(raw["webhook_allowed_targets"], "GATEWAYCERTS_WEBHOOK_ALLOWED_TARGETS"),
            webhook_retry_schedule=parse_schedule(
                str(raw["webhook_retry_schedule"] or ""), "GATEWAYCERTS_WEBHOOK_RETRY_SCHEDULE"
            ),
            webhook_timeout=integer("webhook_timeout", "GATEWAYCERTS_WEBHOOK_TIMEOUT", 1, 60),
            webhook_poll_ms=integer("webhook_poll_ms", "GATEWAYCERTS_WEBHOOK_POLL_MS", 10, 600000),
            expiry_watch_seconds=integer("expiry_watch_seconds", "GATEWAYCERTS_EXPIRY_WATCH_SECONDS", 1, 86400),
            workers=parse_workers(str(raw["workers"] or ""), "GATEWAYCERTS_WORKERS"),
            event_loop=choice("event_loop", "GATEWAYCERTS_EVENT_LOOP", EVENT_LOOPS),
            shutdown_timeout=integer("shutdown_timeout", "GATEWAYCERTS_SHUTDOWN_TIMEOUT", 0, 3600),
            tls_cert_file=tls_cert,
            tls_key_file=tls_key,
            acme_http_port=integer("acme_http_port", "GATEWAYCERTS_ACME_HTTP_PORT", 1, 65535),
            acme_tls_port=integer("acme_tls_port", "GATEWAYCERTS_ACME_TLS_PORT", 1, 65535),
            acme_resolver=parse_resolver(raw["acme_resolver"], "GATEWAYCERTS_ACME_RESOLVER"),
            acme_allowed_targets=parse_cidrs(raw["acme_allowed_targets"], "GATEWAYCERTS_ACME_ALLOWED_TARGETS"),
        )


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (taskset, cpusets) where the OS has one, else all.
    CPU quotas (a Kubernetes `limits.cpu`) are not visible here: give those deployments an explicit count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parse_workers(value: str, name: str) -> int:
    """A worker count as GATEWAYCERTS_WORKERS and `serve --workers` take it: 1..MAX_WORKERS, or 0/auto."""
    text = value.strip().lower()
    if text in ("0", "auto"):
        return min(usable_cpus(), MAX_WORKERS)
    try:
        count = int(text)
    except ValueError:
        raise SettingsError(f"{name} must be an integer or auto, got {value!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise SettingsError(f"{name} must be between 0 (auto) and {MAX_WORKERS}")
    return count


def parse_schedule(value: str, name: str) -> tuple[float, ...]:
    """Comma-separated delays in seconds (0 to 7 days each, at most 20 of them)."""
    try:
        delays = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise SettingsError(f"{name} must be comma-separated seconds, got {value!r}") from None
    if len(delays) > 20 or any(not 0 <= d <= 7 * 86400 for d in delays):
        raise SettingsError(f"{name}: at most 20 delays, each 0 to 604800 seconds")
    return delays


def parse_resolver(value: str | None, name: str) -> tuple[str, int] | None:
    """``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` -> (ip, port); the DNS server must be named by address."""
    if not value:
        return None
    text = value.strip()
    host, port_text = text, "53"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise SettingsError(f"{name} must be IP:PORT or [IPv6]:PORT, got {value!r}")
        port_text = rest[1:] or "53"
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise SettingsError(f"{name} must name the DNS server by IP address (IP:PORT), got {value!r}") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise SettingsError(f"{name} has an invalid port in {value!r}")
    return str(ip), int(port_text)


def parse_cidrs(value: str | None, name: str) -> tuple[str, ...]:
    """Comma-separated CIDRs, normalised (``127.0.0.1/8`` -> ``127.0.0.0/8``)."""
    networks = []
    for item in (i.strip() for i in (value or "").split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(f"{name}: not a CIDR network: {item!r}") from None
    return tuple(networks)


def render_reference() -> str:
    """The configuration table of docs/operations.md, generated from OPTIONS."""
    lines = ["| variable | default | secret | meaning |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = f"`{o.default}`" if o.default is not None else "—"
        lines.append(f"| `{o.env}` | {default} | {'yes' if o.secret else ''} | {o.help} |")
    return "\n".join(lines) + "\n"
