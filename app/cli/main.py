"""`hub`: one entry point for every process of the hub and its administration.

Every command reads the configuration once; a HubError becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from app.config import HubSettings, get_settings
from app.errors import HubError
from app.log_format import configure_logging

EXIT_USAGE = 2


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HubError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def settings() -> HubSettings:
    value = get_settings()
    context = click.get_current_context(silent=True)
    configure_logging(value.log_level, value.log_format, context.info_name if context else "hub")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Integration Hub: design, run and watch integration flows."""


def _register() -> None:
    from app.cli import admin, components, images, processes

    for command in (*processes.COMMANDS, *admin.COMMANDS, *components.COMMANDS, *images.COMMANDS):
        cli.add_command(command)


_register()
