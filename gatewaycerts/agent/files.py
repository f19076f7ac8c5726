"""Writing a layout into the gateway's directory: atomically, in an order a gateway can always read.

Each file: a temporary file in the same directory, fsync, chmod, os.replace; then the directory is fsynced.
Certificates and keys first, the include / crt-list that names them next, stale files last, so a reload at
any moment sees a consistent set. Only files this agent wrote (listed in its manifest) are ever removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from gatewaycerts.agent.layout import KEYS_DIR, Layout

MANIFEST = ".gatewaycerts-sync.json"
_TMP_PREFIX = ".gc-tmp-"


@dataclass
class ApplyResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def prepare_directory(directory: Path) -> None:
    """Create the directory (0700 when new) and its keys/ subdirectory (always 0700); drop our leftover temps."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = directory / KEYS_DIR
    keys.mkdir(mode=0o700, exist_ok=True)
    os.chmod(keys, 0o700)
    for folder in (directory, keys):
        for leftover in folder.glob(f"{_TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def write_atomic(path: Path, content: bytes, mode: int) -> None:
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), mode)  # the umask does not decide a key file's mode
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(directory: Path) -> list[str]:
    try:
        document = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    files = document.get("files") if isinstance(document, dict) else None
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []


def _same(path: Path, content: bytes, mode: int) -> bool:
    try:
        return path.read_bytes() == content and (path.stat().st_mode & 0o777) == mode
    except OSError:
        return False


def _safe_relative(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and len(parts) <= 2


def apply_layout(
    directory: Path, layout: Layout, *, version: str, last_files: list[str], index_files: set[str]
) -> ApplyResult:
    """Make `directory` hold exactly `layout` (plus files we never wrote). `index_files` (the include or the
    crt-list) are written after every other file; files of `last_files` not in `layout` are removed last."""
    result = ApplyResult()
    ordered = sorted(layout, key=lambda name: (name in index_files, name))
    for name in ordered:
        spec = layout[name]
        path = directory / name
        if _same(path, spec.content, spec.mode):
            continue
        write_atomic(path, spec.content, spec.mode)
        result.written.append(name)
    for name in sorted(set(last_files) - set(layout)):
        if not _safe_relative(name):  # a manifest edited by hand never makes us delete outside the directory
            continue
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
            result.removed.append(name)
    if result.changed or sorted(last_files) != sorted(layout):
        manifest = json.dumps({"version": version, "files": sorted(layout)}, indent=1).encode()
        write_atomic(directory / MANIFEST, manifest, 0o600)
    _fsync_dir(directory)
    _fsync_dir(directory / KEYS_DIR)
    return result
