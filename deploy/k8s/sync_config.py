"""Write deploy/k8s/base/gateway.yaml (the ConfigMap's file) from config/gateway.yaml.

kustomize reads only files in or below the kustomization's folder, so the base keeps a copy; this script
makes it, with the one change a pod needs: the local model's ``n_threads`` set to half the container's CPU
limit (in a pod ``os.cpu_count()`` is the node's cores, not the limit). tests/deploy/test_k8s_manifests.py
fails while the copy is stale. Run: ``python deploy/k8s/sync_config.py``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "config" / "gateway.yaml"
TARGET = ROOT / "deploy" / "k8s" / "base" / "gateway.yaml"
LOCAL_MODEL = "  local-smollm2:\n    provider: llamacpp\n"
THREADS_COMMENT = "    # n_threads: 1          # inference threads (default: half the cores)\n"
POD_THREADS = (
    "    # In a pod os.cpu_count() is the node's cores, not the CPU limit (2 in deployment.yaml): half the\n"
    "    # limit, as the default is half the cores.\n"
    "    n_threads: 1\n"
)
HEADER = (
    "# Generated from config/gateway.yaml by deploy/k8s/sync_config.py (do not edit: edit that file and run\n"
    "# the script): the gateway configuration of the Kubernetes deployment, with local-smollm2's n_threads\n"
    "# set for a pod.\n"
)


def pod_config(source: str) -> str:
    """``source`` (config/gateway.yaml's text) as the pod's configuration."""
    if source.count(LOCAL_MODEL) != 1:
        raise SystemExit(f"{SOURCE}: no local-smollm2 entry starting with 'provider: llamacpp'")
    source = source.replace(THREADS_COMMENT, "")
    return HEADER + source.replace(LOCAL_MODEL, LOCAL_MODEL + POD_THREADS)


def main() -> None:
    TARGET.write_text(pod_config(SOURCE.read_text()))
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
