"""Where imported Python components' code lives, so that runner processes on the workers can load it.

`hub component import FOLDER` (and the catalog's folder import) copies the folder to
`$HUB_COMPONENTS_DIR/<tenant or global>/<name>/<version>/`, and the component's catalog entry (`entry`, which a
published flow version pins) names that place as `folder:<relative path>`. A version's code never changes
under the flows pinned to it: a new version is a new folder."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

FOLDER_PREFIX = "folder:"
# node_modules is kept: a Node.js component brings its dependencies (the hub installs nothing from the network).
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".venv")


def code_path(tenant_id: uuid.UUID | None, name: str, version: str) -> str:
    scope = tenant_id.hex if tenant_id is not None else "global"
    return f"{scope}/{name}/{version}"


def install_code(components_dir: Path, relative: str, source: Path) -> str:
    """Copy `source` to `components_dir/relative` (once: an installed version is not replaced). Returns the
    catalog entry that names it."""
    target = components_dir / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
        shutil.copytree(source, staging / "code", ignore=SKIPPED)
        try:
            (staging / "code").rename(target)  # all at once: a worker never sees half a folder
        except OSError:
            if not target.exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _readable(target)
    return FOLDER_PREFIX + relative


def _readable(folder: Path) -> None:
    """Runners run as another user (nobody in the sandbox): the code must be readable by everyone."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def folder_resolver(components_dir: Path) -> Callable[[str], Path | None]:
    """For the process executor: a catalog entry (`folder:...`) to the folder holding that code, or None."""
    root = components_dir.resolve()

    def folder_of(entry: str) -> Path | None:
        if not entry.startswith(FOLDER_PREFIX):
            return None
        folder = (root / entry.removeprefix(FOLDER_PREFIX)).resolve()
        if not folder.is_relative_to(root) or not (folder / "component.json").is_file():
            return None
        return folder

    return folder_of
