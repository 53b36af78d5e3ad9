"""OpenAI-compatible servers (Ollama, vLLM, llama.cpp server, LM Studio) through the ``openai`` SDK.

They take ``max_tokens`` (not ``max_completion_tokens``), need ``api_base``, and usually no key.
Usage is read from the response when the server reports it, else estimated (``app.tokens``).
"""

from __future__ import annotations

from app.providers.openai import OpenAIProvider


class OpenAICompatibleProvider(OpenAIProvider):
    """``Provider`` for any server that speaks OpenAI chat completions."""

    kind = "openai_compatible"
    max_tokens_field = "max_tokens"
