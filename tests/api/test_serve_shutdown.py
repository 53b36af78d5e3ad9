"""Graceful shutdown of a real ``switchyard serve``: on SIGTERM new connections are refused, requests in flight
get the drain period (``SWITCHYARD_DRAIN_S``), then a stream still open ends with an error event (never
``[DONE]``), a request still waiting is answered 503, and the process exits within drain + a few seconds."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from tests.api.raw_http import Answer, Connection, request, serve, sse_data
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, write_config

DRAIN_S = 2.0


def catalogue(base_url: str) -> dict[str, Any]:
    common = {"provider": "openai", "api_base": f"{base_url}/v1", "timeout_s": 60}
    return {
        "models": {
            "endless": {**common, "model": "endless-model"},
            "finite": {**common, "model": "finite-model"},
            "waiting": {**common, "model": "waiting-model"},
        },
        "orchestration": {"max_retries": 0, "request_timeout_s": 120},
    }


def chat(model: str, *, stream: bool) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": stream}
    return request("POST", "/v1/chat/completions", body=body, headers={"x-request-id": f"shutdown-{model}"})


def test_sigterm_drains_then_ends_what_is_left(upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.script("endless-model", Reply(text="more and more", endless=True, chunk_delay_s=0.05))
    upstream.script("finite-model", Reply(text="one two three four five six", chunk_delay_s=0.15))
    upstream.script("waiting-model", Reply(text="too late", delay_s=60))
    path = write_config(tmp_path, catalogue(upstream.base_url))
    env = {**TEST_KEYS, "SWITCHYARD_DRAIN_S": str(DRAIN_S)}
    with serve(path, tmp_path / "gateway.log", env) as gateway:
        endless, waiting = Connection.open(gateway.port), Connection.open(gateway.port)
        endless.send(chat("endless", stream=True))
        waiting.send(chat("waiting", stream=False))
        upstream.wait_for_requests(2, timeout=10)
        time.sleep(0.3)  # the endless stream is flowing
        finite = Connection.open(gateway.port)
        finite.send(chat("finite", stream=True))  # about 1 s long: finishes within the drain period
        upstream.wait_for_requests(3, timeout=10)

        answers: dict[str, Answer] = {}

        def read(name: str, connection: Connection) -> None:
            connection.sock.settimeout(DRAIN_S + 20)
            answers[name] = connection.read()

        readers = [
            threading.Thread(target=read, args=(name, c))
            for name, c in (("endless", endless), ("waiting", waiting), ("finite", finite))
        ]
        for reader in readers:
            reader.start()
        began = time.monotonic()
        gateway.proc.send_signal(signal.SIGTERM)

        refused = False
        for _ in range(100):  # new connections are refused (bounded: 10 s)
            try:
                socket.create_connection(("127.0.0.1", gateway.port), timeout=1).close()
            except OSError:
                refused = True
                break
            time.sleep(0.1)
        assert refused

        gateway.proc.wait(DRAIN_S + 15)
        exited_after = time.monotonic() - began
        for reader in readers:
            reader.join(10)

        assert exited_after < DRAIN_S + 10, exited_after
        assert exited_after >= DRAIN_S * 0.9  # the endless stream kept the drain period running

        finite_events = sse_data(answers["finite"].body)
        assert finite_events[-1] == "[DONE]"  # finished within the drain period, normally
        text = "".join(
            (json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or "" for d in finite_events[:-1]
        )
        assert text == "one two three four five six"

        endless_events = sse_data(answers["endless"].body)
        assert "[DONE]" not in endless_events
        last = json.loads(endless_events[-1])
        assert last["error"]["type"] == "shutting_down"
        assert len(endless_events) > 3  # it streamed until the drain period was over

        assert answers["waiting"].status == 503
        assert answers["waiting"].json()["error"]["type"] == "shutting_down"
        assert answers["waiting"].headers["connection"] == "close"

        access = {
            line["request_id"]: line
            for line in gateway.log_lines()
            if line.get("msg") == "request" and str(line.get("request_id", "")).startswith("shutdown-")
        }
        assert access["shutdown-endless"]["outcome"] == "shutting_down"
        assert access["shutdown-endless"]["estimated"] is True and access["shutdown-endless"]["output_tokens"] > 0
        assert access["shutdown-waiting"]["status"] == 503
        assert access["shutdown-finite"]["status"] == 200 and access["shutdown-finite"]["outcome"] == "success"
