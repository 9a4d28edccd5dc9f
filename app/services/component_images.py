"""Components added by image reference: pulled from a registry (with the tenant's pull credentials from the
vault) onto the container engine the workers use, their descriptor read from the image, and catalogued pinned
to the digest that was pulled, so a later push to the same tag changes no published flow.

The descriptor is the label `io.integration-hub.component.json` when the image has it, else the file
`/component/component.json` inside the image (where the parent images' `COPY . /component` puts it).
Air-gapped installs load the image first (`docker load`) and add it without pulling."""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from dataclasses import dataclass
from typing import Any

import docker
import orjson
import sqlalchemy as sa
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from app.errors import NotFoundError, ValidationError
from app.services import catalog
from app.services.catalog import ImportResult
from app.storage.db import Database
from app.storage.models import Credential
from app.storage.scoping import tenant_session
from app.vault.store import Vault

DESCRIPTOR_LABEL = "io.integration-hub.component.json"
DESCRIPTOR_PATH = "/component/component.json"
MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024
_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::[0-9]+)?|localhost(?::[0-9]+)?)/)?"
    r"(?P<repository>[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


class RegistryError(ValidationError):
    """The registry refused the pull, does not have the image, or cannot be reached."""


@dataclass(frozen=True)
class ImageReference:
    registry: str | None  # None: the engine's default registry (Docker Hub)
    repository: str
    tag: str
    digest: str | None = None

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest (what a pull and a digest pin name)."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def parse_reference(reference: str) -> ImageReference:
    found = _REFERENCE.match(reference.strip())
    if found is None:
        raise ValidationError(
            f"{reference!r} is not an image reference: write it as registry.example.com:5000/team/name:tag"
        )
    first = found["registry"]
    # "team/name": the first part is a registry only when it looks like a host (a dot, a port, localhost).
    if first and not ("." in first or ":" in first or first.startswith("localhost")):
        if first != first.lower():  # then it is part of the repository, where capitals are not allowed
            raise ValidationError(
                f"{reference!r} is not an image reference: write it as registry.example.com:5000/team/name:tag "
                "(repository names are lower case)"
            )
        return ImageReference(
            None, f"{first}/{found['repository']}", found["tag"] or "latest", found["digest"]
        )
    return ImageReference(first, found["repository"], found["tag"] or "latest", found["digest"])


def pull_login(
    db: Database,
    vault: Vault,
    tenant_id: uuid.UUID,
    registry: str | None,
    credential_id: uuid.UUID | None = None,
) -> dict[str, str] | None:
    """The tenant's login for `registry`: the named credential (which must be for that registry), else the
    tenant's shared registry credential for that host; None: pull anonymously."""
    with tenant_session(db.sessions, tenant_id) as session:
        query = sa.select(Credential).where(Credential.kind == "registry", Credential.owner_user_id.is_(None))
        if credential_id is not None:
            query = query.where(Credential.id == credential_id)
        candidates = list(session.scalars(query.order_by(Credential.name)))
        if credential_id is not None and not candidates:
            raise NotFoundError("No shared container-registry credential with this id in this tenant.")
        for credential in candidates:
            values = vault.reveal(session, credential)
            host = str(values.get("registry") or "").strip().removeprefix("https://").removeprefix("http://")
            if host.rstrip("/") == (registry or "docker.io"):
                return {
                    "username": str(values.get("username") or ""),
                    "password": str(values.get("password") or ""),
                }
            if credential_id is not None:
                raise ValidationError(
                    f"The credential {credential.name!r} is for the registry {host!r}, not {registry or 'docker.io'!r}."
                )
    return None


def add_image(
    db: Database,
    vault: Vault | None,
    client: docker.DockerClient,
    reference: str,
    *,
    tenant_id: uuid.UUID | None,
    credential_id: uuid.UUID | None = None,
    pull: bool = True,
    name: str | None = None,
    user_id: uuid.UUID | None = None,
) -> ImportResult:
    """Pull the image (unless `pull` is False: it must already be on the engine), read its descriptor and
    catalogue it to run in the docker executor, pinned to the image's digest. `tenant_id` None: a global
    component (pulled anonymously: pull credentials belong to tenants); so is a pull without a `vault`."""
    ref = parse_reference(reference)
    if pull:
        login = pull_login(db, vault, tenant_id, ref.registry, credential_id) if tenant_id and vault else None
        _pull(client, ref, login)
    image = _local_image(client, ref, pulled=pull)
    descriptor = _descriptor(client, image, ref)
    pinned = _pinned(image, ref)
    hub = descriptor.get("x-hub") if isinstance(descriptor.get("x-hub"), dict) else {}
    descriptor["x-hub"] = {
        **{k: v for k, v in hub.items() if k not in ("entry_point", "runtime")},
        "runtime": "docker",
        "image": pinned,
        "tag": ref.tag,
    }
    default = name or ref.repository.rsplit("/", 1)[-1]
    owner = tenant_id.hex if tenant_id else "global"
    return catalog.import_descriptor(
        db, descriptor, name=default, tenant_id=tenant_id, user_id=user_id, image_owner=owner
    )


def _pull(client: docker.DockerClient, ref: ImageReference, login: dict[str, str] | None) -> None:
    where = ref.registry or "docker.io"
    target = f"{ref.name}@{ref.digest}" if ref.digest else ref.name
    try:
        stream = client.api.pull(
            target, tag=None if ref.digest else ref.tag, auth_config=login, stream=True, decode=True
        )
        errors = [str(event.get("error")) for event in stream if event.get("error")]
    except (APIError, DockerException, OSError) as exc:
        errors = [str(getattr(exc, "explanation", None) or exc)]
    if not errors:
        return
    error = errors[-1]
    lowered = error.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        hint = (
            "the login was refused: fix the tenant's container-registry credential for it"
            if login
            else "it asks for a login: add a container-registry credential for it on the Credentials page"
        )
        raise RegistryError(f"The registry {where} refused to pull {ref}: {hint}.")
    if "manifest unknown" in lowered or "not found" in lowered or "name unknown" in lowered:
        raise RegistryError(f"The registry {where} has no image {ref}; check the name and tag.")
    if (
        "connection refused" in lowered
        or "no such host" in lowered
        or "dial tcp" in lowered
        or "timeout" in lowered
    ):
        raise RegistryError(
            f"The registry {where} cannot be reached ({error}). Without network access, load the image on the "
            "container engine (`docker load`) and add it without pulling."
        )
    raise RegistryError(f"Pulling {ref} from {where} failed: {error}")


def _local_image(client: docker.DockerClient, ref: ImageReference, *, pulled: bool) -> Any:
    try:
        return client.images.get(str(ref))
    except ImageNotFound:
        if pulled:
            raise RegistryError(f"The pull of {ref} ended without the image on the engine.") from None
        raise ValidationError(
            f"The image {ref} is not on the container engine: load it (`docker load -i FILE`) or add it with a pull."
        ) from None
    except (DockerException, OSError) as exc:
        raise ValidationError(f"The container engine cannot be reached ({exc}); check DOCKER_HOST.") from None


def _descriptor(client: docker.DockerClient, image: Any, ref: ImageReference) -> dict[str, Any]:
    label = (image.labels or {}).get(DESCRIPTOR_LABEL)
    raw: bytes | str | None = label
    if raw is None:
        raw = _read_file(client, image, DESCRIPTOR_PATH)
    if raw is None:
        raise ValidationError(
            f"The image {ref} carries no component descriptor: give it the label {DESCRIPTOR_LABEL} or the file "
            f"{DESCRIPTOR_PATH} (images built on the hub's parent images have it)."
        )
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"The component descriptor in {ref} is not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise ValidationError(f"The component descriptor in {ref} must be a JSON object.")
    return found


def _read_file(client: docker.DockerClient, image: Any, path: str) -> bytes | None:
    """A file of the image, read from a created (never started) container."""
    container = client.containers.create(
        image.id, command=["/component-descriptor-reader"], network_mode="none"
    )
    try:
        chunks, _ = container.get_archive(path)
        archive = b"".join(chunks)
    except NotFound:
        return None
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = next((m for m in tar.getmembers() if m.isfile()), None)
        if member is None or member.size > MAX_DESCRIPTOR_BYTES:
            return None
        extracted = tar.extractfile(member)
        return extracted.read() if extracted else None


def _pinned(image: Any, ref: ImageReference) -> str:
    """The reference by digest as the registry knows it (what a pull of the same image anywhere gets); an image
    that never came from a registry (built or loaded here) is pinned by its id (the same wherever it is loaded)."""
    if ref.digest:
        return str(ref)
    for digest in image.attrs.get("RepoDigests") or []:
        name, _, value = digest.partition("@")
        if name == ref.name or name == f"docker.io/{ref.name}" or name == f"docker.io/library/{ref.name}":
            return f"{ref.name}@{value}"
    return str(
        image.id
    )  # built or loaded here: its id, which a later build under the same tag does not change
