"""Real backends against a real server on the loopback interface: Hugging Face models built
locally, OpenAICloud, offload-gym's OpenAI-compatible server and every fault it injects."""

import json
import socket
import time
import urllib.request

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import offload_gym  # noqa: F401  (registers the ids)
from offload_agents.slm import TinyLMConfig, build_slm
from offload_gym.models import CachedCloud, CloudError, SimulatedCloud
from offload_gym.models.chat import PriceTable
from offload_gym.models.hf import TransformersCloud, TransformersLocal
from offload_gym.models.openai_cloud import OpenAICloud
from offload_gym.protocol import HELP_REQUEST
from offload_gym.serve import CloudServer
from offload_gym.tasks import make_generator

TINY = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)
SECRET = "sk-test-DO-NOT-LEAK-1234"


@pytest.fixture(scope="module")
def slm_path(tmp_path_factory):
    return build_slm(tmp_path_factory.mktemp("slm"), config=TINY, n_per_family=2, progress=False)


@pytest.fixture(scope="module")
def tasks():
    return make_generator("arithmetic", seed=1).take(8)


def client(server, **kw):
    kw = {"send_task": True, "backoff_s": 0.01, "timeout": 2.0, "api_key": SECRET, **kw}
    return OpenAICloud("offload-gym", base_url=server.url, **kw)


def stats(server):
    with urllib.request.urlopen(server.url.removesuffix("/v1") + "/stats") as r:
        return json.loads(r.read())


# ---------------------------------------------------------------- Hugging Face models
def test_transformers_local_batches_and_reports_confidence(slm_path, tasks):
    local = TransformersLocal(slm_path, max_new_tokens=6, device="cpu", batch_size=3)
    batch = local.answer_batch(tasks[:4])
    assert len(batch) == 4 and all(0.0 <= r.confidence <= 1.0 for r in batch)
    assert all(1 <= r.tokens <= 6 for r in batch)
    assert local.answer(tasks[0]) is batch[0]  # remembered: the env's step does not regenerate
    again = TransformersLocal(slm_path, max_new_tokens=6, device="cpu")
    assert again.answer(tasks[0]).text == batch[0].text  # greedy: deterministic
    assert local.deterministic and not TransformersLocal(slm_path, temperature=1.0).deterministic


def test_transformers_cloud_bills_exact_tokens(slm_path, tasks):
    prices = PriceTable(input_per_1k=1.0, output_per_1k=2.0)
    cloud = TransformersCloud(slm_path, max_new_tokens=5, prices=prices, device="cpu")
    r = cloud.answer(tasks[0])
    n_in = len(cloud.gen.tokenizer(cloud.gen.prompt(tasks[0]))["input_ids"])
    assert r.prompt_tokens == n_in and 1 <= r.completion_tokens <= 5
    assert r.cost == pytest.approx((n_in * 1.0 + r.completion_tokens * 2.0) / 1000)
    assert r.cost <= cloud.quote(tasks[0]) + 1e-12
    assert cloud.cache_key(tasks[0], None) != cloud.cache_key(tasks[0], "partial")
    with pytest.raises(ValueError, match="dtype"):
        TransformersCloud(slm_path, dtype="int3")


def test_chat_template_is_used_when_the_tokenizer_has_one(slm_path, tasks):
    local = TransformersLocal(slm_path, max_new_tokens=2, device="cpu")
    assert local.gen.prompt(tasks[0]).endswith("Answer:\n")
    local.gen.tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    )
    prompt = local.gen.prompt(tasks[0])
    assert prompt.startswith("<system>") and prompt.endswith("<assistant>")
    assert tasks[0].prompt in prompt


# ---------------------------------------------------------------- the server and the client
def test_client_against_the_server_answers_like_the_cloud(tasks):
    with CloudServer(SimulatedCloud()) as server:
        cloud = client(server, prices={"input_per_1k": 0.0025, "output_per_1k": 0.01})
        got = cloud.answer(tasks[0])
        want = SimulatedCloud().answer(tasks[0])
        assert got.text == want.text and got.completion_tokens == want.completion_tokens
        assert got.cost == pytest.approx(want.cost) and got.latency_s > 0
        assert got.cost <= cloud.quote(tasks[0])
        assert stats(server)["requests"] == 1
        # No task sent: a plain 200 answer that says the task is needed (graded wrong).
        plain = client(server, send_task=False).answer(tasks[0])
        assert "offload_task" in plain.text
        auto = client(server, send_task="auto").answer(tasks[0])  # asks /v1/models once
        assert auto.text == want.text
    with pytest.raises(ValueError, match="send_task"):
        OpenAICloud("m", base_url="http://127.0.0.1:1/v1", send_task="yes")


def test_a_plain_openai_client_gets_answers_and_a_clean_404(tasks):
    import http.client

    import openai

    with CloudServer(SimulatedCloud()) as server:
        plain = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        models = plain.models.list().data
        assert models[0].model_extra["offload_needs_task"] is True
        out = plain.chat.completions.create(
            model="offload-gym", messages=[{"role": "user", "content": tasks[0].prompt}]
        )
        assert out.choices[0].message.content and out.usage.total_tokens > 0
        other = plain.chat.completions.create(
            model="offload-gym", messages=[{"role": "user", "content": "Say hi."}]
        )
        assert other.choices[0].message.content
        host, port = server.url.removeprefix("http://").removesuffix("/v1").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)  # one kept-alive socket
        body = json.dumps({"model": "offload-gym", "prompt": "1 + 1 ="})
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        first = conn.getresponse()
        assert first.status == 404 and "chat/completions" in first.read().decode()
        chat = json.dumps({"model": "offload-gym",
                           "messages": [{"role": "user", "content": "Say hi."}]})  # fmt: skip
        conn.request("POST", "/v1/chat/completions", chat, {"Content-Type": "application/json"})
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read())["choices"]
        conn.close()


def test_a_plain_openai_client_is_answered_as_the_task_it_types():
    """The prompt a user is shown by ``env.reset(seed=s)``, sent by a plain OpenAI client
    (no ``offload_task``), is recognised and answered as that task, as OpenAICloud's would be;
    another prompt gets the plain answer that the task is needed."""
    import gymnasium as gym
    import openai

    from offload_gym.serve import episode_tasks_of

    known, skipped = episode_tasks_of(["OffloadMath-v0", "OffloadCode-v0"], range(3))
    assert skipped == [] and known
    env = gym.make("OffloadMath-v0")
    obs, _ = env.reset(seed=2)
    shown = env.unwrapped.episode_tasks[0]
    assert shown.prompt in (obs if isinstance(obs, str) else str(obs))
    with CloudServer(SimulatedCloud(), known_tasks=known) as server:
        plain = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        out = plain.chat.completions.create(
            model="offload-gym", messages=[{"role": "user", "content": shown.prompt}]
        )
        assert out.choices[0].message.content == SimulatedCloud().answer(shown).text
        other = plain.chat.completions.create(
            model="offload-gym", messages=[{"role": "user", "content": "What is 2 + 2?"}]
        )
        assert "offload_task" in other.choices[0].message.content
        assert stats(server)["recognised"] == 1


def test_serve_refuses_unknown_ids_to_recognise(capsys):
    from offload_agents.cli import main

    assert main(["serve", "--recognise", "OffloadNope-v0", "--port", "0"]) == 2
    assert "unknown environment id" in capsys.readouterr().err


def test_answer_many_runs_requests_in_parallel(tasks):
    with CloudServer(SimulatedCloud(), faults=["slow:0.4"] * 8) as server:
        cloud = client(server, concurrency=8)
        start = time.perf_counter()
        out = cloud.answer_many(tasks)
        assert time.perf_counter() - start < 2.0  # eight 0.4 s answers, not 3.2 s in a row
        assert [r.text for r in out] == [SimulatedCloud().answer(t).text for t in tasks]


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("slow:3", "no complete answer within"),
        ("429:0", "429 rate limited"),
        ("500", "HTTP 500"),
        ("malformed", "malformed response"),
        ("close", "connection failed"),
        ("empty", "empty answer"),
    ],
)
def test_each_fault_is_retried_then_reported(fault, cause, tasks):
    # One fault, then a good answer: the retry recovers.
    with CloudServer(SimulatedCloud(), faults=[fault]) as server:
        cloud = client(server, timeout=0.5, max_retries=1)
        assert cloud.answer(tasks[0]).text == SimulatedCloud().answer(tasks[0]).text
        assert stats(server)["requests"] == 2
    # The fault every time: a clear error naming the endpoint and the cause, never the key.
    with CloudServer(SimulatedCloud(), faults=[fault] * 3) as server:
        cloud = client(server, timeout=0.5, max_retries=2)
        with pytest.raises(CloudError) as err:
            cloud.answer(tasks[0])
        msg = str(err.value)
        assert server.url in msg and cause in msg and "after 3 attempts" in msg
        assert SECRET not in msg and SECRET not in repr(cloud)
        assert stats(server)["requests"] == 3 and cloud.failures == 1


@pytest.mark.parametrize("tokens", ["-5", "1e12"])
def test_impossible_usage_is_a_clear_error_counted_as_possibly_billed(tokens, tasks):
    with CloudServer(SimulatedCloud(), faults=[f"usage:{tokens}"]) as server:
        cloud = client(server, prices={"input_per_1k": 1.0, "output_per_1k": 1.0}, max_retries=2)
        with pytest.raises(CloudError, match="impossible usage reported") as err:
            cloud.answer(tasks[0])
        assert err.value.unconfirmed_attempts == 1 and stats(server)["requests"] == 1
    # Through the env: the step is a counted failed offload (cloud_failure="local"), nothing
    # charged, the attempt in the ledger's upper bound of spend; no crash, no absurd reward.
    with CloudServer(SimulatedCloud(), faults=[f"usage:{tokens}"]) as server:
        cloud = client(server, prices={"input_per_1k": 1.0, "output_per_1k": 1.0})
        env = gym.make("OffloadMath-v0", tasks=tasks[:1], budget=1.0, cloud_model=cloud,
                       cloud_failure="local")  # fmt: skip
        env.reset(seed=0)
        _, reward, _, _, info = env.step(HELP_REQUEST)
        summary = env.unwrapped.ledger.summary()
        assert info["cloud_failed"] and not info["offloaded"] and reward == 0.0
        assert summary["cost_used"] == 0.0 and summary["unconfirmed_attempts"] == 1
        assert summary["spend_upper_bound"] == pytest.approx(cloud.quote(tasks[0], ""))
        env.close()


def test_retry_after_is_honoured(tasks):
    with CloudServer(SimulatedCloud(), faults=["429:0.6"]) as server:
        cloud = client(server, backoff_s=0.0, max_retries=1)
        start = time.perf_counter()
        cloud.answer(tasks[0])
        assert time.perf_counter() - start >= 0.6


def test_client_errors_are_not_retried(tasks):
    with CloudServer(SimulatedCloud(), faults=["400"] * 4) as server:
        cloud = client(server, max_retries=3)
        with pytest.raises(CloudError, match="HTTP 400"):
            cloud.answer(tasks[0])
        assert stats(server)["requests"] == 1


def test_connection_refused(tasks):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    cloud = OpenAICloud("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1,
                        backoff_s=0.01, api_key=SECRET)  # fmt: skip
    with pytest.raises(CloudError, match="connection failed") as err:
        cloud.answer(tasks[0])
    assert SECRET not in str(err.value)


def test_bad_client_settings(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAICloud("gpt-x")  # the real endpoint needs a key
    with pytest.raises(ValueError, match="max_retries"):
        OpenAICloud("m", base_url="http://127.0.0.1:1/v1", max_retries=-1)
    with pytest.raises(ValueError, match="output_per_1k"):
        PriceTable(output_per_1k=-1)
    with pytest.raises(ValueError, match="unknown fault"):
        CloudServer(SimulatedCloud(), faults=["teapot"])


def test_pickles_never_hold_the_key(monkeypatch, tasks):
    import copy
    import pickle

    cloud = OpenAICloud("m", base_url="http://127.0.0.1:1/v1", api_key=SECRET)
    blob = pickle.dumps(cloud)
    assert SECRET.encode() not in blob
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    back = pickle.loads(blob)
    assert back._key == "sk-from-env" and back.cache_key(tasks[0]) == cloud.cache_key(tasks[0])
    assert copy.deepcopy(cloud) is cloud


# ---------------------------------------------------------------- environments
def test_failed_offload_in_the_env_is_not_charged_and_is_flagged(tmp_path, tasks):
    with CloudServer(SimulatedCloud(), faults=["500"] * 2) as server:
        cloud = client(server, max_retries=1)
        ledger = tmp_path / "ledger.jsonl"
        env = gym.make("OffloadMath-v0", tasks=tasks[:3], budget=1.0, cloud_model=cloud,
                       cloud_failure="local", ledger_path=str(ledger))  # fmt: skip
        env.reset(seed=0)
        _, _, _, _, info = env.step("<unknown> I need external assistance </unknown>")
        assert info["cloud_failed"] and not info["offloaded"] and info["cost"] == 0.0
        assert "HTTP 500" in info["cloud_error"] and info["calls_used"] == 0
        assert SECRET not in json.dumps(info, default=str)
        _, _, _, _, info = env.step("<unknown> help </unknown>")  # the server is fine again
        assert info["offloaded"] and not info["cloud_failed"] and info["calls_used"] == 1
        rows = [json.loads(line) for line in ledger.read_text().splitlines()]
        assert [r["failed"] for r in rows] == [True, False] and rows[1]["cost"] > 0
        strict = gym.make("OffloadMath-v0", tasks=tasks[:3], budget=1.0,
                          cloud_model=client(server, max_retries=0, timeout=0.3))  # fmt: skip
        server.faults.extend([("close", 0.0)])
        strict.reset(seed=0)
        with pytest.raises(CloudError, match="connection failed"):
            strict.step("<unknown>")


def test_network_cloud_flags_the_spec_nondeterministic(tasks):
    with CloudServer(SimulatedCloud()) as server:
        env = gym.make("OffloadMathRouter-v0", tasks=tasks, cloud_model=client(server))
        assert env.spec.nondeterministic is True
        check_env(env.unwrapped, skip_render_check=True)
    assert gym.make("OffloadMathRouter-v0").spec.nondeterministic is False


def test_end_to_end_text_and_router_views_and_a_second_run_from_the_cache(
    slm_path, tasks, tmp_path
):
    cache_file = tmp_path / "cloud.sqlite"

    def run_both():
        cloud = CachedCloud(client(server), path=cache_file)
        local = TransformersLocal(slm_path, max_new_tokens=6, device="cpu")
        router = gym.make("OffloadMathRouter-v0", tasks=tasks, budget=0.5, local_model=local,
                          cloud_model=cloud, counterfactuals=False)  # fmt: skip
        router.reset(seed=0)
        offloads = 0
        for i in range(len(tasks)):
            _, _, _, _, info = router.step(i % 2)
            offloads += info["offloaded"]
        text = gym.make("OffloadMath-v0", tasks=tasks, budget=0.5, cloud_model=cloud)
        text.reset(seed=0)
        for i in range(len(tasks)):
            text.step("<unknown> help </unknown>" if i % 2 else local.answer(tasks[i]).text)
        cloud.close()
        return offloads

    with CloudServer(SimulatedCloud()) as server:
        assert run_both() == 4
        first = stats(server)["requests"]
        assert first == 4  # the router's and the text view's offloads are the same 4 questions
        assert run_both() == 4
        assert stats(server)["requests"] == first  # the second run paid nothing


def test_a_trickling_server_is_cut_off_at_the_attempt_deadline(tasks):
    """Each read is quick (one byte every 0.05 s), the body is not: the client's per-read
    timeout would wait for all of it; the attempt's deadline does not."""
    with CloudServer(SimulatedCloud(), faults=["trickle:0.05"] * 2) as server:
        cloud = client(server, timeout=0.5, max_retries=0)
        start = time.perf_counter()
        with pytest.raises(CloudError, match=r"no complete answer within 0\.5 s") as err:
            cloud.answer(tasks[0])
        assert time.perf_counter() - start < 1.5
        assert err.value.unconfirmed_attempts == 1 and cloud.unconfirmed_attempts == 1


def test_a_retried_attempt_is_reported_as_possibly_billed(tasks):
    with CloudServer(SimulatedCloud(), faults=["trickle:0.05"]) as server:
        cloud = client(server, timeout=0.5, max_retries=1)
        r = cloud.answer(tasks[0])
        assert r.text == SimulatedCloud().answer(tasks[0]).text
        assert r.unconfirmed_attempts == 1


def test_the_call_deadline_bounds_every_retry(tasks):
    with CloudServer(SimulatedCloud(), faults=["slow:3"] * 6) as server:
        cloud = client(server, timeout=1.0, max_retries=5, call_timeout=1.5)
        start = time.perf_counter()
        with pytest.raises(CloudError, match="after 2 attempts"):
            cloud.answer(tasks[0])
        assert time.perf_counter() - start < 2.2
    with pytest.raises(ValueError, match="call_timeout"):
        client(server, call_timeout=0)


def test_the_ledger_bounds_real_spend_with_possibly_billed_attempts(tasks):
    from offload_gym.protocol import HELP_REQUEST

    with CloudServer(SimulatedCloud(), faults=["trickle:0.05"]) as server:
        cloud = client(server, timeout=0.5, max_retries=1,
                       prices={"input_per_1k": 1.0, "output_per_1k": 1.0})  # fmt: skip
        env = gym.make("OffloadMath-v0", tasks=tasks[:1], budget=1.0, cloud_model=cloud)
        env.reset(seed=0)
        _, _, _, _, info = env.step(HELP_REQUEST)
        summary = env.unwrapped.ledger.summary()
        assert info["offloaded"] and summary["unconfirmed_attempts"] == 1
        quote = cloud.quote(tasks[0], "")
        assert summary["spend_upper_bound"] == pytest.approx(summary["cost_used"] + quote)
        env.close()


def test_plausible_usage_past_the_bound_is_capped_not_refused():
    """A chat template adds a few tokens beyond the quote's bound: billed at the bound. Only
    usage beyond ABSURD_USAGE times the bound is an error."""
    from types import SimpleNamespace

    from offload_gym.models.openai_cloud import ABSURD_USAGE

    cloud = OpenAICloud("m", base_url="http://127.0.0.1:9/v1", api_key=SECRET, max_tokens=100)
    msgs = [{"role": "user", "content": "abc"}]  # bound: 3 bytes + 8 = 11 prompt tokens
    usage = SimpleNamespace(prompt_tokens=20, completion_tokens=50)
    assert cloud._billed_tokens(usage, msgs) == (11, 50)
    assert cloud._billed_tokens(None, msgs) == (11, 100)
    with pytest.raises(Exception, match="impossible usage"):
        cloud._billed_tokens(SimpleNamespace(prompt_tokens=11 * ABSURD_USAGE + 1,
                                             completion_tokens=1), msgs)  # fmt: skip
