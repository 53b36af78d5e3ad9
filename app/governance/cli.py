"""``switchyard keys create|list|show|update|revoke``: key management straight on the store.

The command opens the same store as the server would with the same environment (``SWITCHYARD_REDIS_URL``,
else the SQLite file ``SWITCHYARD_STATE_PATH``, relative to the working directory), so it works with the
server running or not and needs no master key: whoever can open the store manages the keys. Output is JSON;
``create`` prints the secret once. In ``update``, ``none`` clears a limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from app.errors import ConfigError, GatewayError
from app.governance.admin import KeyAdmin
from app.governance.keys import KeyCreate, KeyUpdate, key_view
from app.settings.catalogue import load_config
from app.settings.settings import Settings
from app.state import StoreUnavailableError, open_store

LIMITS: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
    ("--models", "comma-separated catalogue models the key may use (default: all)", lambda v: v.split(",")),
    ("--rpm", "requests per minute", int),
    ("--tpm", "tokens per minute", int),
    ("--max-parallel", "requests in flight at once", int),
    ("--budget-usd", "spend limit per period, in USD", float),
    ("--budget-period", "1h, 1d, 7d or 30d (default: lifetime)", str),
    ("--expires-at", "RFC 3339 time the key stops working", str),
    ("--metadata", "a JSON object kept with the key", json.loads),
)


def add_keys_parser(sub: Any) -> None:
    """Add ``keys`` and its subcommands to the ``switchyard`` parser."""
    keys = sub.add_parser("keys", help="manage virtual keys (on the store: SWITCHYARD_REDIS_URL or STATE_PATH)")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print its secret (shown once)")
    create.add_argument("--name", required=True)
    update = actions.add_parser("update", help="change a key's limits ('none' clears one)")
    update.add_argument("id")
    update.add_argument("--name")
    for parser in (create, update):
        for flag, text, _ in LIMITS:
            parser.add_argument(flag, help=text)
    actions.add_parser("list", help="list the keys (no secrets)")
    actions.add_parser("show", help="a key with its spend and usage").add_argument("id")
    actions.add_parser("revoke", help="revoke a key").add_argument("id")
    for parser in actions.choices.values():
        parser.add_argument("--config", help="gateway YAML, to check model names (env SWITCHYARD_CONFIG)")
        parser.set_defaults(func=cmd_keys)


def _limits(args: argparse.Namespace, *, clearable: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for flag, _, parse in LIMITS:
        raw = getattr(args, flag[2:].replace("-", "_"))
        if raw is None:
            continue
        values[flag[2:].replace("-", "_")] = None if clearable and raw.lower() == "none" else parse(raw)
    if getattr(args, "name", None) is not None:
        values["name"] = args.name
    return values


async def _run(args: argparse.Namespace, settings: Settings, known: list[str]) -> Any:
    store = open_store(settings)
    await store.start()
    try:
        admin = KeyAdmin(store, known)
        action: Callable[[], Awaitable[Any]]
        if args.action == "create":
            body = KeyCreate(**_limits(args, clearable=False))

            async def action() -> Any:
                record, secret = await admin.create(body)
                return key_view(record, secret=secret)

        elif args.action == "update":
            changes = KeyUpdate(**_limits(args, clearable=True))

            async def action() -> Any:
                return key_view(await admin.update(args.id, changes))

        elif args.action == "list":

            async def action() -> Any:
                return [key_view(r) for r in await admin.list()]

        elif args.action == "show":

            async def action() -> Any:
                record, usage = await admin.get(args.id)
                return key_view(record, usage=usage)

        else:

            async def action() -> Any:
                return key_view(await admin.revoke(args.id))

        return await action()
    finally:
        await store.aclose()


def cmd_keys(args: argparse.Namespace) -> int:
    settings = Settings(**({"config": args.config} if args.config else {}))
    try:
        known = list(load_config(settings.config).models)
    except ConfigError as exc:
        print(f"switchyard: invalid configuration: {exc}", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(_run(args, settings, known))
    except (ValidationError, ValueError) as exc:
        print(f"switchyard keys: invalid value: {exc}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"switchyard keys: {exc.message}", file=sys.stderr)
        return 1
    except StoreUnavailableError as exc:
        print(f"switchyard keys: the store is unavailable ({exc})", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
