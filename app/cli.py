"""``switchyard serve | check-config | models | keys | router train``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.errors import ConfigError
from app.settings.catalogue import GatewayConfig, load_config
from app.settings.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v
        for k, v in {
            "config": args.config,
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "workers": getattr(args, "workers", None),
        }.items()
        if v is not None
    }
    return Settings(**overrides)


def _load(settings: Settings) -> GatewayConfig | None:
    try:
        config = load_config(settings.config)
        from app.routing.context import load_routing_models

        load_routing_models(config.routing, config.source)  # embedding model and trained router file load
        return config
    except ConfigError as exc:
        print(f"switchyard: invalid configuration: {exc}", file=sys.stderr)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    config = _load(settings)
    if config is None:
        return 1
    print(f"{settings.config}: OK ({len(config.models)} models)")
    return 0


def _price_text(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6f}"


def cmd_models(args: argparse.Namespace) -> int:
    from app.pricing import resolve_price
    from app.providers.registry import missing_key_env

    settings = _settings(args)
    config = _load(settings)
    if config is None:
        return 1
    rows = [("MODEL", "PROVIDER", "UPSTREAM", "$/1k IN", "$/1k OUT", "USABLE")]
    for name, model in config.models.items():
        price = resolve_price(name, model)
        if (missing := missing_key_env(model, os.environ)) is not None:
            usable = f"no ({missing} unset)"
        elif model.provider == "llamacpp":
            from importlib.util import find_spec

            usable = "yes" if find_spec("llama_cpp") else "no (install '.[local]')"
        else:
            usable = "yes"
        fmt = _price_text
        rows.append(
            (
                name,
                model.provider,
                model.model or name,
                fmt(price.input_per_1k),
                fmt(price.output_per_1k),
                usable,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def server_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn options for the connection limits and the graceful shutdown (see app/api/http_limits.py):
    the limited httptools protocol (h11 with its head-size bound where httptools is missing), the keep-alive
    timeout, and ``SWITCHYARD_DRAIN_S`` as the time streams in flight get after SIGTERM before they are ended."""
    from importlib.util import find_spec

    options: dict[str, Any] = {
        "timeout_keep_alive": settings.keepalive_s,
        "timeout_graceful_shutdown": settings.drain_s,
    }
    if find_spec("httptools") is not None:
        from app.api.http_limits import PROTOCOL

        options["http"] = PROTOCOL
    else:
        options |= {"http": "h11", "h11_max_incomplete_event_size": settings.max_header_bytes}
    return options


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if _load(settings) is None:
        return 1
    from app.governance.master import startup_problem

    if (problem := startup_problem(settings)) is not None:  # no master key on a non-loopback host
        print(f"switchyard: {problem}", file=sys.stderr)
        return 1
    os.environ["SWITCHYARD_CONFIG"] = str(settings.config)  # workers re-create the app from the environment
    os.environ.setdefault("SWITCHYARD_GC_FREEZE", "true")  # see app/gc_tuning.py
    settings = settings.model_copy(update={"gc_freeze": Settings().gc_freeze})
    from app.observability.multiproc import multiprocess_dir, prepare_multiprocess_dir

    own_dir: Path | None = None  # the metrics directory this process made, removed when it exits
    if settings.workers > 1 or multiprocess_dir():  # workers share metrics through files (before any import)
        default = Path(tempfile.gettempdir()) / f"switchyard-metrics-{os.getpid()}"
        own_dir = default if multiprocess_dir() is None else None
        prepare_multiprocess_dir(default)
    try:
        _run_server(settings)
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0


def _run_server(settings: Settings) -> None:
    import uvicorn

    from app.observability.logging import uvicorn_log_config

    # JSON logs; the request middleware logs every request, so uvicorn's access log is off
    log_kwargs: dict[str, Any] = {"log_config": uvicorn_log_config(settings.log_level), "access_log": False}
    log_kwargs.update(server_limits(settings))
    if settings.workers > 1:
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            **log_kwargs,
        )
    else:
        from app.main import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            **log_kwargs,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description="Switchyard LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="listen address (env SWITCHYARD_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (env SWITCHYARD_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (env SWITCHYARD_WORKERS, default 1)")
    serve.add_argument("--config", help="gateway YAML (env SWITCHYARD_CONFIG)")
    serve.set_defaults(func=cmd_serve)
    for name, func, text in (
        ("check-config", cmd_check_config, "validate the configuration file"),
        ("models", cmd_models, "list the catalogue and which models are usable"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", help="gateway YAML (env SWITCHYARD_CONFIG)")
        command.set_defaults(func=func)
    from app.governance.cli import add_keys_parser

    add_keys_parser(sub)  # switchyard keys create|list|show|update|revoke
    from app.routing.train_cli import add_router_parser

    add_router_parser(sub)  # switchyard router train
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
