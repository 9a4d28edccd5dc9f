"""The composition root: builds, once per process, what the web app, the CLI and the workers share."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

import redis

from app.auth.throttle import LoginThrottle
from app.config import HubSettings, get_settings
from app.keyring import load_key_ring
from app.oauth.tokens import TokenKeeper
from app.processes.embedded_redis import resolve_redis_url
from app.services.catalog import TenantCatalog
from app.services.webhooks import RouteDefaults
from app.storage.db import Database
from app.vault.store import Vault
from runtime.bus.streams import StreamsBus
from runtime.net.egress import EgressPolicy
from runtime.net.egress_store import EgressStore


@dataclass(frozen=True)
class HubContext:
    settings: HubSettings
    db: Database
    redis: redis.Redis

    @functools.cached_property
    def vault(self) -> Vault:
        return Vault(load_key_ring(self.settings))

    @functools.cached_property
    def tokens(self) -> TokenKeeper:
        """OAuth2 access tokens renewed under the lock every worker shares."""
        return TokenKeeper(self.db, lambda: self.vault, self.redis, self.egress)

    @property
    def egress(self) -> EgressPolicy:
        """The configured allow list and what hub administrators added on the Activity page."""
        return EgressStore(self.redis).policy(EgressPolicy.parse(self.settings.egress_allow))

    @functools.cached_property
    def bus(self) -> StreamsBus:
        return StreamsBus(self.redis, max_backlog=self.settings.tenant_max_backlog)

    def components_for(self, tenant_id: uuid.UUID) -> TenantCatalog:
        """The components a tenant's flows may use (built-ins, its own, global imports)."""
        return TenantCatalog(self.db, tenant_id)

    @property
    def routes(self) -> RouteDefaults:
        s = self.settings
        return RouteDefaults(s.effective_public_base_url, s.webhook_tenant_rps, s.tenant_max_backlog)

    @property
    def login_throttle(self) -> LoginThrottle:
        return LoginThrottle(self.redis, self.settings.login_max_failures, self.settings.login_window_seconds)

    def close(self) -> None:
        self.redis.close()
        self.db.dispose()


def build_context(settings: HubSettings) -> HubContext:
    url = resolve_redis_url(settings.redis_url, settings.data_path)
    return HubContext(
        settings=settings,
        db=Database.connect(settings.effective_database_url),
        redis=redis.Redis.from_url(url, health_check_interval=30),
    )


@functools.cache
def get_context() -> HubContext:
    """The process-wide context, created on first use from the configuration read once."""
    return build_context(get_settings())
