"""OpenAI-compatible servers (vLLM, llama.cpp server, Ollama, LM Studio, hosted look-alikes): the OpenAI
chat completions codec with these differences.

- ``max_tokens`` instead of ``max_completion_tokens`` (what every compatible server reads).
- No default base URL: the catalogue's ``api_base`` is required (checked by the config). The key is
  optional; without one no ``Authorization`` header is sent.
- Of the droppable options only ``user`` is forwarded (it is in every compatible server's schema and
  harmless where ignored); ``store``, ``metadata``, ``service_tier``, ``prompt_cache_key`` and
  ``safety_identifier`` are dropped (and named in the dropped-parameters header): ``store`` and
  ``metadata`` can make vLLM refuse the request, the others mean nothing to a local server. (A
  pass-through body goes as the client sent it: the upstream decides.)
- ``capabilities().reasoning`` is False: most compatible servers ignore ``reasoning_effort`` (vLLM,
  Ollama and LM Studio honour it for some models only), so routing prefers a target that surely thinks
  as asked. If a request with reasoning reaches this codec anyway, ``reasoning_effort`` is still sent
  and the server decides. Reasoning text the server produces (``reasoning_content`` / ``reasoning``)
  is always decoded.
- ``top_k`` is forwarded (vLLM, llama.cpp server and LM Studio read it; others ignore it).
- Files are not offered (no compatible server reads OpenAI ``file`` parts reliably).
- Usage is read when the server reports it; otherwise ``Decoded.usage`` is None and the provider
  estimates it.
"""

from __future__ import annotations

from typing import ClassVar

from app.providers.base import Capabilities, ModelTarget
from app.providers.openai import OpenAICodec


class OpenAICompatibleCodec(OpenAICodec):
    """Any server that speaks OpenAI chat completions."""

    kind: ClassVar[str] = "openai_compatible"
    default_base_url: ClassVar[str] = ""  # api_base is required by the catalogue
    max_tokens_field: ClassVar[str] = "max_tokens"
    forwarded_options: ClassVar[frozenset[str]] = frozenset({"user"})
    takes_top_k: ClassVar[bool] = True

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return Capabilities(
            images=True,
            image_urls=True,
            files=False,
            json_schema=True,
            reasoning=False,
            logprobs=True,
            logit_bias=True,
            top_k=self.takes_top_k,
            native_n=True,
            droppable=self.forwarded_options,
        )


CODEC = OpenAICompatibleCodec()
