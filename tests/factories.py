"""Builders of valid rows for tests: one row of every tenant-owned model for a tenant."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from app.auth.tokens import token_hash
from app.storage import models as m


def insert_tenant_rows(session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, tag: str) -> None:
    """Insert one row of each tenant-owned model, named after `tag`."""
    key = m.TenantKey(tenant_id=tenant_id, wrapped_key=b"k" * 40, master_key_id="k1")
    flow = m.Flow(tenant_id=tenant_id, name=f"flow-{tag}")
    session.add_all(
        [
            m.Membership(tenant_id=tenant_id, user_id=user_id, role="editor"),
            m.ApiToken(
                tenant_id=tenant_id,
                user_id=user_id,
                name=tag,
                token_prefix="ht_x",
                token_hash=token_hash(tag),
            ),
            m.Component(
                tenant_id=tenant_id,
                name=f"comp-{tag}",
                version="1",
                title=tag,
                descriptor={},
                runtime="builtin",
            ),
            m.Template(tenant_id=tenant_id, name=f"tpl-{tag}", graph={}),
            m.Invitation(
                tenant_id=tenant_id,
                token_hash=token_hash(f"invite-{tag}"),
                role="viewer",
                expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            ),
            m.AuditEvent(tenant_id=tenant_id, action=f"test.{tag}"),
            key,
            flow,
        ]
    )
    session.flush()
    run = m.Run(tenant_id=tenant_id, flow_id=flow.id)
    session.add_all(
        [
            m.Credential(
                tenant_id=tenant_id, name=f"cred-{tag}", kind="api_key", ciphertext=b"x", data_key_id=key.id
            ),
            m.OAuthClient(
                tenant_id=tenant_id,
                name=f"oauth-{tag}",
                client_id=tag,
                authorize_url="https://auth.example.com/authorize",
                token_url="https://auth.example.com/token",
                secret_ciphertext=b"x",
                data_key_id=key.id,
            ),
            m.FlowVersion(tenant_id=tenant_id, flow_id=flow.id, number=1, graph={}, trigger={}),
            m.Webhook(tenant_id=tenant_id, flow_id=flow.id, token=f"tok-{tag}"),
            run,
        ]
    )
    session.flush()
    session.add_all(
        [
            m.StepExecution(
                tenant_id=tenant_id,
                run_id=run.id,
                step_id="s1",
                component="c",
                function="f",
                status="succeeded",
            ),
            m.RunLogLine(tenant_id=tenant_id, run_id=run.id, message=f"log-{tag}"),
        ]
    )
    session.flush()
