"""Which executors a worker of this hub has: built-ins run inline, imported Python and Node.js components in
sandboxed runner processes whose code comes from $HUB_COMPONENTS_DIR. (Containers, HUB_EXECUTOR=docker, come with the
docker executor.)"""

from __future__ import annotations

from app.config import HubSettings
from app.services.component_code import folder_resolver
from runtime.executors.process import ProcessExecutor
from runtime.executors.sandbox import SandboxPolicy
from runtime.steps.executor import Executor, InlineExecutor


def process_executor(settings: HubSettings, idle_s: float = 300.0) -> ProcessExecutor:
    # The hub's own data (database file, dev key, Redis files) is hidden from runners; their own code is not.
    policy = SandboxPolicy(hidden=(settings.data_path,))
    return ProcessExecutor(folder_resolver(settings.components_path), policy, idle_s=idle_s)


def step_executors(settings: HubSettings) -> dict[str, Executor]:
    return {"inline": InlineExecutor(), "process": process_executor(settings)}
