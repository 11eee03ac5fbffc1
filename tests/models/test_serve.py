"""``offload-gym serve`` hardened as an OpenAI endpoint: keys, sizes, timeouts, connection caps,
bad JSON, unknown models and streaming, each against the real openai client or a raw socket."""

import http.client
import json
import socket
import time

import openai
import pytest

from offload_gym.models import SimulatedCloud
from offload_gym.models.chat import task_payload
from offload_gym.models.openai_cloud import OpenAICloud
from offload_gym.serve import CloudServer
from offload_gym.tasks import make_generator

KEY = "sk-serve-test-123"
CHAT = {"model": "offload-gym", "messages": [{"role": "user", "content": "Say hi."}]}


@pytest.fixture(scope="module")
def task():
    return make_generator("arithmetic", seed=1)[0]


def _address(server):
    host, port = server.url.removeprefix("http://").removesuffix("/v1").split(":")
    return host, int(port)


def _post(server, body: bytes, headers=None):
    conn = http.client.HTTPConnection(*_address(server), timeout=5)
    conn.request("POST", "/v1/chat/completions", body,
                 {"Content-Type": "application/json", **(headers or {})})  # fmt: skip
    response = conn.getresponse()
    return response.status, response.read(), response, conn


def test_an_api_key_is_required_when_set(task):
    with CloudServer(SimulatedCloud(), api_key=KEY) as server:
        anonymous = openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as err:
            anonymous.chat.completions.create(**CHAT)
        assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            anonymous.models.list()
        status, data, _, conn = _post(server, json.dumps(CHAT).encode())  # no header at all
        assert status == 401 and json.loads(data)["error"]["code"] == "invalid_api_key"
        conn.close()
        keyed = openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0)
        assert keyed.chat.completions.create(**CHAT).choices[0].message.content
        cloud = OpenAICloud("offload-gym", base_url=server.url, api_key=KEY, send_task=True)
        assert cloud.answer(task).text == SimulatedCloud().answer(task).text
    with pytest.raises(ValueError, match="api_key"):
        CloudServer(SimulatedCloud(), api_key="  ")


def test_large_bodies_get_413_unread_and_the_connection_closes():
    with CloudServer(SimulatedCloud(), max_body_bytes=1000) as server:
        sock = socket.create_connection(_address(server), timeout=5)
        head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                "application/json\r\nContent-Length: 300000000\r\n\r\n")  # fmt: skip
        sock.sendall(head.encode())  # the 300 MB never follow: the server must not wait
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.1 413") and b"300,000,000 bytes" in reply
        status, data, _, conn = _post(server, json.dumps({**CHAT, "pad": "x" * 2000}).encode())
        assert status == 413 and json.loads(data)["error"]["type"] == "invalid_request_error"
        conn.close()
        status, _, _, conn = _post(server, json.dumps(CHAT).encode())  # a small one still works
        assert status == 200
        conn.close()
        conn = http.client.HTTPConnection(*_address(server), timeout=5)
        conn.putrequest("POST", "/v1/chat/completions")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        assert conn.getresponse().status == 411
        conn.close()


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"model": ', b"[1, 2]"])
def test_bad_json_gets_400_with_a_json_error_body(body):
    with CloudServer(SimulatedCloud()) as server:
        status, data, response, conn = _post(server, body)
        assert status == 400 and response.getheader("Content-Type") == "application/json"
        assert "bad request body" in json.loads(data)["error"]["message"]
        conn.request("POST", "/v1/chat/completions", json.dumps(CHAT))  # the socket still works
        assert conn.getresponse().status == 200
        conn.close()


def test_an_unknown_model_is_a_404_as_openai_answers_it():
    with CloudServer(SimulatedCloud(), model_name="served") as server:
        plain = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        with pytest.raises(openai.NotFoundError) as err:
            plain.chat.completions.create(**{**CHAT, "model": "gpt-9"})
        assert err.value.code == "model_not_found" and "served" in str(err.value)
        assert plain.chat.completions.create(**{**CHAT, "model": "served"}).choices


def test_streaming_is_answered_as_server_sent_events_the_client_reads(task):
    with CloudServer(SimulatedCloud()) as server:
        plain = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        body = {**CHAT, "extra_body": {"offload_task": task_payload(task)}}
        whole = plain.chat.completions.create(**body).choices[0].message.content
        chunks = list(
            plain.chat.completions.create(
                **body, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole == SimulatedCloud().answer(task).text
        assert chunks[-1].usage.total_tokens > 0 and chunks[-1].choices == []
        finish = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finish == [None, None, "stop"]


def test_slow_and_idle_clients_are_cut_off_and_connections_are_capped():
    with CloudServer(SimulatedCloud(), read_timeout=0.3, max_connections=1) as server:
        idle = socket.create_connection(_address(server), timeout=5)
        idle.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n")  # headers never finished
        time.sleep(0.05)
        second = socket.create_connection(_address(server), timeout=5)
        assert second.recv(4096).startswith(b"HTTP/1.1 503")  # the one slot is taken
        second.close()
        start = time.perf_counter()
        assert idle.recv(4096) == b""  # closed by the server after read_timeout
        assert time.perf_counter() - start < 3
        idle.close()
        time.sleep(0.05)
        status, _, _, conn = _post(server, json.dumps(CHAT).encode())  # the slot is free again
        assert status == 200
        conn.close()
    for bad in ({"read_timeout": 0}, {"read_timeout": float("inf")}, {"max_connections": 0},
                {"max_body_bytes": True}):  # fmt: skip
        with pytest.raises(ValueError):
            CloudServer(SimulatedCloud(), **bad)


def test_ctrl_c_stops_serve_with_one_line(monkeypatch, capsys):
    from offload_agents.cli import main
    from offload_gym import serve

    def interrupted(self):  # Ctrl-C arrives inside the serving loop
        raise KeyboardInterrupt

    monkeypatch.setattr(serve._BoundedServer, "service_actions", interrupted)
    monkeypatch.setenv("OFFLOAD_GYM_API_KEY", KEY)
    assert main(["serve", "--port", "0", "--recognise-seeds", "0"]) == 0
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[-1] == "stopped" and "an API key required" in out.out
    assert out.err == ""


def test_the_client_refuses_a_response_body_past_its_cap(monkeypatch, task):
    from offload_gym.models import CloudError, openai_cloud

    with CloudServer(SimulatedCloud()) as server:
        cloud = OpenAICloud("offload-gym", base_url=server.url, send_task=True, max_retries=1,
                            backoff_s=0.01)  # fmt: skip
        assert cloud.answer(task).text  # a normal answer is well under 4 MiB
        monkeypatch.setattr(openai_cloud, "MAX_RESPONSE_BYTES", 100)
        with pytest.raises(CloudError, match="response body over 100 bytes"):
            cloud.answer(task)
