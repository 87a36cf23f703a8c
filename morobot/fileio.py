"""Small file helpers: atomic writes (temporary name, then rename) and hashing."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Calls ``write(file_object)`` on a temporary file next to ``path``, then renames it.

    A crash or exception leaves either the previous file or none under ``path``, never a
    partial one; the temporary file is removed on exceptions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` (UTF-8) atomically; returns the path."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))
    return Path(path)


def atomic_save_figure(fig: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Saves a matplotlib figure atomically (the format from ``path``'s suffix); returns the path."""
    path = Path(path)
    fmt = savefig_kwargs.pop("format", path.suffix.lstrip(".") or "png")
    atomic_write_bytes(path, lambda fh: fig.savefig(fh, format=fmt, **savefig_kwargs))
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically; returns the path."""
    import torch

    atomic_write_bytes(path, lambda fh: torch.save(obj, fh))
    return Path(path)


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Writes ``data`` as indented, key-sorted JSON atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


def load_verified_torch(path: str | Path, what: str, error: type[Exception], map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` after checking the file against its JSON sidecar.

    The sidecar is ``path`` with a ``.json`` suffix; when present, its recorded ``sha256`` must match
    the file. Every failure raises ``error`` (a ``ValueError`` subclass of the caller) naming ``what``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    side = path.with_suffix(".json")
    if side.is_file():
        try:
            recorded = json.loads(side.read_text(encoding="utf-8")).get("sha256")
        except (OSError, ValueError, AttributeError) as exc:
            raise error(f"{what} sidecar {side} is corrupt: {exc}") from exc
        if recorded != file_sha256(path):
            raise error(f"{what} {path} does not match its sidecar {side} (SHA-256 differs)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise error(f"{what} {path} is corrupt or unreadable: {exc}") from exc
