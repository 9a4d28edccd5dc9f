"""Where imported Python components' code lives, so that runner processes on the workers can load it.

`hub component import FOLDER` (and the catalog's folder import) copies the folder to
`$HUB_COMPONENTS_DIR/<tenant or global>/<name>/<version>/`, and the component's catalog entry (`entry`, which a
published flow version pins) names that place as `folder:<relative path>`. A version's code never changes
under the flows pinned to it: a new version is a new folder."""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from app.errors import ValidationError
from runtime.components.shipped import shipped_folder

FOLDER_PREFIX = "folder:"
# node_modules is kept: a Node.js component brings its dependencies (the hub installs nothing from the network).
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv")


SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def code_path(tenant_id: uuid.UUID | None, name: str, version: str) -> str:
    for label, part in (("name", name), ("version", version)):
        if not SAFE_PART.match(part) or ".." in part:
            raise ValidationError(
                f"The component's {label} {part!r} cannot name a folder; use letters, digits, . _ + -"
            )
    scope = tenant_id.hex if tenant_id is not None else "global"
    return f"{scope}/{name}/{version}"


def _ignored(source: Path) -> Callable[[str, list[str]], set[str]]:
    """What is not copied: caches, and links that lead outside the component's folder (a link to the hub's .env
    would otherwise become a readable copy)."""
    root = source.resolve()

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(SKIPPED(folder, names))
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                skipped.add(name)
        return skipped

    return ignore


def install_code(components_dir: Path, relative: str, source: Path) -> str:
    """Copy `source` to `components_dir/relative` (once: an installed version is not replaced). Returns the
    catalog entry that names it."""
    root = components_dir.resolve()
    target = (components_dir / relative).resolve()
    if not target.is_relative_to(root):
        raise ValidationError(f"{relative!r} is not a place inside the components folder.")
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
        try:
            shutil.copytree(source, staging / "code", ignore=_ignored(source), symlinks=True)
            (staging / "code").rename(target)  # all at once: a worker never sees half a folder
        except OSError:
            if not target.exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _readable(target)
    return FOLDER_PREFIX + relative


def _readable(folder: Path) -> None:
    """Runners run as another user (nobody in the sandbox): the code must be readable by everyone (programs
    keep their execute bit)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o111
        path.chmod(0o755 if executable else 0o644)


def scope_of(entry: str) -> str:
    """Whose code a `folder:` entry names: a tenant's id (hex) or "global"."""
    return entry.removeprefix(FOLDER_PREFIX).split("/", 1)[0]


def folder_resolver(components_dir: Path) -> Callable[[str], Path | None]:
    """For the process executor: a catalog entry (`folder:...`) to the folder holding that code, or None."""
    root = components_dir.resolve()

    def folder_of(entry: str) -> Path | None:
        shipped = shipped_folder(entry)  # the hub's own sandboxed components (the code step)
        if shipped is not None:
            return shipped
        if not entry.startswith(FOLDER_PREFIX):
            return None
        folder = (root / entry.removeprefix(FOLDER_PREFIX)).resolve()
        if not folder.is_relative_to(root) or not (folder / "component.json").is_file():
            return None
        return folder

    return folder_of
