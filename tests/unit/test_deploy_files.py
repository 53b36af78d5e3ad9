"""Static checks of the deployment files against the code (no Docker engine runs on the test machines).

The Dockerfile, docker-compose.yml, Prometheus config and Grafana provisioning are parsed, and every path,
port, command, environment variable and metric name they mention is checked against the repository and the
application. The image's HEALTHCHECK command is also run for real against a live server.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from app.cli import build_parser
from app.main import create_app
from app.observability import metrics
from app.settings.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"


# -- Dockerfile parsing ------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_pairs(args: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(args))


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def routes() -> RouteProbe:
    return RouteProbe(create_app(Settings(config=ROOT / "config" / "gateway.yaml")))


class RouteProbe:
    """``path in routes``: the app answers ``GET path`` with 200 (health and metrics need no lifespan)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __contains__(self, path: object) -> bool:
        async def get() -> int:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                return (await client.get(str(path))).status_code

        return asyncio.run(get()) == 200


def final_stage(docker: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (k, _) in enumerate(docker) if k == "FROM")
    return docker[last_from:]


def dockerfile_env(docker: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in final_stage(docker):
        if keyword == "ENV":
            env.update(env_pairs(args))
    return env


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


# -- Dockerfile ----------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_slim_python_311(docker: list[tuple[str, str]]) -> None:
    args = {k: v for k, v in (a.split("=", 1) for kw, a in docker if kw == "ARG" and "=" in a)}
    stages = [a.split() for kw, a in docker if kw == "FROM"]
    assert len(stages) >= 2
    for stage in stages:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], stage[0])
        assert image == "python:3.11-slim"
    names = {s[2] for s in stages if len(s) == 3 and s[1].upper() == "AS"}
    copies_from = {m.group(1) for kw, a in docker if kw == "COPY" for m in [re.match(r"--from=(\S+)", a)] if m}
    assert copies_from and copies_from <= names


def test_dockerfile_installs_from_the_projects_own_files(docker: list[tuple[str, str]]) -> None:
    patterns = dockerignore_patterns()
    for keyword, args in docker:
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            assert not ignored(source, patterns), f"COPY source {source} is excluded by .dockerignore"
    installs = [a for kw, a in docker if kw == "RUN" and "pip install" in a]
    assert any("pip install ." in a or 'pip install ".[local]"' in a for a in installs)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "local" in pyproject["project"]["optional-dependencies"]  # the INSTALL_LOCAL build arg's extra
    assert any(kw == "ARG" and a.startswith("INSTALL_LOCAL") for kw, a in docker)


def test_dockerignore_keeps_secrets_and_tests_out_but_the_build_inputs_in() -> None:
    patterns = dockerignore_patterns()
    for path in (".env", "tests/unit/x.py", ".git/config", "app/__pycache__/x.pyc"):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "app/main.py", "config/gateway.yaml"):
        assert not ignored(path, patterns), path


def test_dockerfile_runs_switchyard_serve_as_non_root(docker: list[tuple[str, str]]) -> None:
    final = final_stage(docker)
    users = [a for kw, a in final if kw == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(kw == "RUN" and "useradd" in a and users[-1] in a for kw, a in final)
    cmd = exec_form(next(a for kw, a in reversed(final) if kw == "CMD"))
    assert cmd == ["switchyard", "serve", "--host", "0.0.0.0", "--port", "8000"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["switchyard"] == "app.cli:main"
    parsed = build_parser().parse_args(cmd[1:])
    assert (parsed.command, parsed.host, parsed.port) == ("serve", "0.0.0.0", 8000)
    exposed = [a for kw, a in final if kw == "EXPOSE"]
    assert exposed == [str(parsed.port)]


def test_dockerfile_config_path_is_documented_and_read(docker: list[tuple[str, str]], monkeypatch) -> None:
    env = dockerfile_env(docker)
    config_path = env["SWITCHYARD_CONFIG"]
    copied = [a.split() for kw, a in final_stage(docker) if kw == "COPY" and not a.startswith("--from")]
    assert ["config/gateway.yaml", config_path] in copied
    assert config_path in DOCKERFILE.read_text().split("CMD")[0]  # mentioned in the header comment too
    monkeypatch.setenv("SWITCHYARD_CONFIG", config_path)
    assert str(Settings().config) == config_path


def test_healthcheck_probes_the_health_route_on_the_served_port(
    docker: list[tuple[str, str]], routes: RouteProbe
) -> None:
    args = next(a for kw, a in final_stage(docker) if kw == "HEALTHCHECK")
    assert "CMD" in args
    command = exec_form(args[args.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]  # slim images have no curl
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)['\"]", command[2])
    assert url is not None
    assert url.group(1) == "8000" and url.group(2) == "/health"
    assert "/health" in routes


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[int]:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump({"models": {"m": {"provider": "openai_compatible", "api_base": "http://127.0.0.1:9/v1"}}})
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(config=config)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_healthcheck_command_really_passes_and_fails(docker: list[tuple[str, str]], live_server: int) -> None:
    args = next(a for kw, a in final_stage(docker) if kw == "HEALTHCHECK")
    code = exec_form(args[args.index("CMD") + 3 :].strip())[2]
    up = subprocess.run([sys.executable, "-c", code.replace(":8000/", f":{live_server}/")], timeout=30)
    assert up.returncode == 0
    down = subprocess.run(
        [sys.executable, "-c", code.replace("/health", "/no-such-path").replace(":8000/", f":{live_server}/")],
        capture_output=True,
        timeout=30,
    )
    assert down.returncode != 0


# -- docker-compose, Prometheus, Grafana -----------------------------------------------------------------


def volume_map(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative binds only)."""
    out = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("."):
            out[container] = host
    return out


def test_compose_runs_the_gateway_with_config_and_keys(compose: dict[str, Any], docker: list[tuple[str, str]]) -> None:
    services = compose["services"]
    assert {"switchyard", "prometheus", "grafana"} <= set(services)
    gateway = services["switchyard"]
    assert (ROOT / gateway["build"]["context"] / "Dockerfile").exists()
    assert gateway["env_file"] in (".env", [".env"])
    config_path = gateway["environment"]["SWITCHYARD_CONFIG"]
    assert config_path == dockerfile_env(docker)["SWITCHYARD_CONFIG"]
    host_config = volume_map(gateway)[config_path]
    assert (ROOT / host_config).is_file()
    ports = [p.split(":") for p in gateway["ports"]]
    exposed = next(a for kw, a in final_stage(docker) if kw == "EXPOSE")
    assert [exposed] == [container for _host, container in ports]
    build_args = gateway["build"].get("args", {})
    assert set(build_args) <= {a.split("=")[0] for kw, a in docker if kw == "ARG"}


def test_prometheus_scrapes_the_gateway_metrics_route(compose: dict[str, Any], routes: RouteProbe) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = volume_map(prometheus)
    config_flag = next(c for c in prometheus["command"] if c.startswith("--config.file="))
    container_path = config_flag.split("=", 1)[1]
    host_path = ROOT / mounts[container_path]
    scrape = yaml.safe_load(host_path.read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "switchyard")
    assert job["metrics_path"] in routes
    gateway_port = compose["services"]["switchyard"]["ports"][0].split(":")[1]
    assert job["static_configs"][0]["targets"] == [f"switchyard:{gateway_port}"]


def test_grafana_is_provisioned_with_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = volume_map(grafana)
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].split(":")[1]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    provider = yaml.safe_load((provisioning / "dashboards" / "switchyard.yml").read_text())["providers"][0]
    dashboards_dir = provider["options"]["path"]
    host_dir = ROOT / mounts[dashboards_dir]
    dashboard = json.loads((host_dir / "switchyard.json").read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"]
    home = grafana["environment"].get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    assert home is None or home == f"{dashboards_dir}/switchyard.json"


def defined_metrics() -> dict[str, set[str]]:
    """Every exposed series name of Switchyard's metrics -> its label names."""
    out: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        describe = getattr(value, "describe", None)
        if describe is None or not getattr(value, "_name", "").startswith("switchyard_"):
            continue
        labels = set(value._labelnames)
        name = value._name
        kind = value._type
        if kind == "counter":
            out[f"{name}_total"] = labels
        elif kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                out[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
        else:
            out[name] = labels
    return out


def test_dashboard_queries_use_only_defined_metrics_and_labels() -> None:
    dashboard = json.loads((ROOT / "config" / "grafana" / "dashboards" / "switchyard.json").read_text())
    known = defined_metrics()
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in ("cost per model", "request rate", "p50", "p95", "error", "tokens", "fallbacks", "breaker"):
        assert needed in titles, needed
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\bswitchyard_[a-z_]+", expr))
        assert names, expr
        assert names <= set(known), names - set(known)
        labels = set(known[next(iter(names))]) if len(names) == 1 else set.intersection(*(known[n] for n in names))
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (x.strip() for x in group.split(",")):
                assert label in labels, f"{label} not a label of {names}"
        for label in re.findall(r"(\w+)(?:=~|!=|=)\"", expr):
            assert label in labels, f"{label} not a label of {names}"


def test_env_example_covers_the_keys_and_settings() -> None:
    example = (ROOT / "config" / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    gateway = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    key_envs = {m["api_key_env"] for m in gateway["models"].values() if m.get("api_key_env")}
    assert key_envs <= names
    fields = set(Settings.model_fields)
    for name in names:
        if name.startswith("SWITCHYARD_") and name != "SWITCHYARD_INSTALL_LOCAL":
            assert name.removeprefix("SWITCHYARD_").lower() in fields, name
    assert not re.search(r"^[A-Z_]*KEY=\S", example, re.MULTILINE)  # no key values in the example
