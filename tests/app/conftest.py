from __future__ import annotations

import pytest

from tests.app.hub_runtime import HubRuntime, make_hub_runtime


@pytest.fixture
def hub(db, redis) -> HubRuntime:
    return make_hub_runtime(db, redis)
