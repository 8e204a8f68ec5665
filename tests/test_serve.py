"""Tests of `s3rec serve` (s3rec.serve) with real HTTP requests on loopback: answers equal Recommender's,
unknown items are reported, bad requests are 422 with a clear message, the CLI starts and stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch
import uvicorn

from s3rec import Recommender, RunConfig, from_dataframes, run
from s3rec.cli import main
from s3rec.data.synthetic import make_synthetic
from s3rec.serve import MAX_BATCH, create_app

QUIET = {"progress": False, "log": lambda *a, **k: None, "echo": lambda *a, **k: None}


def synthetic_log(n_users: int = 60, n_items: int = 40, seed: int = 0) -> pd.DataFrame:
    """A planted-pattern log with raw ids unlike internal ids ("u3", "sku21")."""
    d = make_synthetic(n_users=n_users, n_items=n_items, avg_len=8, n_attributes=10, n_topics=5, seed=seed)
    lengths = np.diff(d.offsets)
    return pd.DataFrame({"user": [f"u{u}" for u in np.repeat(np.arange(d.n_users), lengths)],
                         "item": [f"sku{7 * i}" for i in d.items],
                         "ts": np.concatenate([np.arange(n) for n in lengths])})


def tiny_config(model: str = "sasrec") -> RunConfig:
    cfg = RunConfig(model=model, seed=1)
    cfg.encoder.d, cfg.encoder.n_layers, cfg.encoder.max_len = 16, 1, 8
    cfg.finetune.epochs, cfg.pretrain.epochs = 2, 1
    return cfg


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("serve") / "run"
    data = from_dataframes(synthetic_log(), user_col="user", item_col="item", time_col="ts", min_count=1, name="tiny")
    run(tiny_config(), out=out, data=data, **QUIET)
    return out


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def served(run_dir):
    """(httpx client, Recommender, port): uvicorn in a thread on a free loopback port."""
    rec = Recommender.load(run_dir)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(rec), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        yield client, rec, port
    server.should_exit = True
    thread.join(10)
    sock.close()


def _msgs(response: httpx.Response) -> str:
    return " | ".join(f"{e['loc']}: {e['msg']}" for e in response.json()["detail"])


def test_health_names_model_dataset_and_items(served):
    client, rec, _ = served
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model": "sasrec", "dataset": "tiny", "n_items": rec.n_items, "max_len": 8}


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_recommend_equals_recommender_and_reports_unknown_items(served, exclude_seen):
    client, rec, _ = served
    history = ["sku7", "nope", "sku14", 12345, "sku21"]
    r = client.post("/recommend", json={"history": history, "k": 5, "exclude_seen": exclude_seen})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = rec.recommend(histories=[history], k=5, exclude_seen=exclude_seen)[0]
    assert body["items"] == expected["items"] and len(body["items"]) == 5
    np.testing.assert_allclose(body["scores"], expected["scores"], rtol=1e-6)
    assert body["scores"] == sorted(body["scores"], reverse=True)
    assert body["unknown_items"] == ["nope", 12345]  # as sent, integers stay integers
    seen = {"sku7", "sku14", "sku21"}
    assert (not seen & set(body["items"])) if exclude_seen else True


def test_a_known_user_is_scored_on_its_whole_sequence_as_recommend_users_does(served):
    client, rec, _ = served
    r = client.post("/recommend", json={"user": "u3", "k": 5})
    assert r.status_code == 200, r.text
    expected = rec.recommend(users=["u3"], k=5)[0]
    assert r.json()["items"] == expected["items"] and r.json()["user"] == "u3"
    both = client.post("/recommend/batch", json=[{"user": "u3", "k": 5}, {"history": ["sku7"], "k": 5}]).json()
    assert both[0]["items"] == expected["items"] and both[1]["user"] is None


def test_defaults_are_k10_and_exclude_seen(served):
    client, rec, _ = served
    r = client.post("/recommend", json={"history": ["sku7"]})
    assert r.status_code == 200
    assert r.json()["items"] == rec.recommend(histories=[["sku7"]], k=10)[0]["items"]


def test_k_may_be_n_items_and_then_every_unseen_item_comes_back(served):
    client, rec, _ = served
    r = client.post("/recommend", json={"history": ["sku7", "sku14"], "k": rec.n_items})
    assert r.status_code == 200
    assert len(r.json()["items"]) == rec.n_items - 2


def test_batch_answers_in_order_like_single_requests(served):
    client, _, _ = served
    requests = [{"history": ["sku7", "sku14"], "k": 3},
                {"history": ["sku21", "x"], "k": 5, "exclude_seen": False},
                {"history": ["sku28"], "k": 3},
                {"history": ["sku7", "sku14"], "k": 4}]
    r = client.post("/recommend/batch", json=requests)
    assert r.status_code == 200, r.text
    singles = [client.post("/recommend", json=q).json() for q in requests]
    for got, one in zip(r.json(), singles, strict=True):  # batch size changes the last float bits only
        assert got["items"] == one["items"] and got["unknown_items"] == one["unknown_items"]
        np.testing.assert_allclose(got["scores"], one["scores"], rtol=1e-5)
    assert client.post("/recommend/batch", json=[]).json() == []


@pytest.mark.parametrize("payload, where, text", [
    ({"history": []}, "history", "at least 1 item"),
    ({"history": ["nope", "nada"]}, "history", "history has no known items (unknown: 'nope', 'nada')"),
    ({"history": ["sku7"], "k": 0}, "k", "greater than or equal to 1"),
    ({"history": ["sku7"], "k": 10_000}, "k", "less than or equal to"),
    ({"history": ["sku7"], "k": "3"}, "k", "valid integer"),
    ({"history": ["sku7"], "k": 2.5}, "k", "valid integer"),
    ({"k": 3}, "body", "give exactly one of history or user"),
    ({"history": "sku7"}, "history", "valid list"),
    ({"history": [["sku7"]]}, "history", "valid string"),
    ({"history": ["sku7"], "user": "u1"}, "body", "give exactly one of history or user"),
    ({"user": "ghost"}, "user", "unknown user 'ghost'"),
    ({"user": ["u1"]}, "user", "valid string"),
    ({"history": ["sku7"], "users": "u1"}, "users", "Extra inputs are not permitted"),
])
def test_bad_requests_are_422_with_a_clear_message(served, payload, where, text):
    client, _, _ = served
    r = client.post("/recommend", json=payload)
    assert r.status_code == 422
    assert where in str(r.json()["detail"][0]["loc"]) and text in _msgs(r), _msgs(r)


def test_bad_request_in_a_batch_is_named_by_its_index(served):
    client, _, _ = served
    r = client.post("/recommend/batch", json=[{"history": ["sku7"]}, {"history": ["zzz"]}])
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", 1, "history"] and "no known items" in _msgs(r)
    r = client.post("/recommend/batch", json=[{"history": ["sku7"]}] * (MAX_BATCH + 1))
    assert r.status_code == 422 and f"at most {MAX_BATCH}" in _msgs(r)
    assert client.post("/recommend/batch", json={"history": ["sku7"]}).status_code == 422
    assert client.post("/recommend", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_openapi_schema_documents_the_endpoints_and_k_range(served):
    client, rec, _ = served
    schema = client.get("/openapi.json").json()
    assert {"/recommend", "/recommend/batch", "/health"} <= set(schema["paths"])
    k = schema["components"]["schemas"]["RecommendRequest"]["properties"]["k"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, rec.n_items, 10)


def test_concurrent_requests_all_succeed(served):
    client, rec, port = served
    expected = rec.recommend(histories=[["sku7", "sku14"]], k=5)[0]["items"]
    results: list = []

    def worker():
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            results.extend(c.post("/recommend", json={"history": ["sku7", "sku14"], "k": 5}).json()["items"]
                           for _ in range(10))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [expected] * 40


def test_cli_errors_are_one_line(served, run_dir, tmp_path, capsys):
    _, _, port = served
    assert main(["serve", "--run", str(run_dir), "--port", str(port)]) == 2  # the fixture's server holds it
    err = capsys.readouterr().err
    assert err.startswith(f"s3rec: error: cannot listen on 127.0.0.1:{port}") and err.count("\n") == 1
    assert main(["serve", "--run", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    assert main(["serve", "--run", str(run_dir), "--port", "99999"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s3rec: error: cannot listen on 127.0.0.1:99999") and err.count("\n") == 1


def test_cli_serves_until_interrupted(run_dir):
    sock = _free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "s3rec", "serve", "--run", str(run_dir), "--port", str(port),
                             "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "s3rec serve did not start within 60 s"
                time.sleep(0.2)
        assert r.json()["model"] == "sasrec"
        r = httpx.post(f"http://127.0.0.1:{port}/recommend", json={"history": ["sku7"], "k": 2}, timeout=30)
        assert r.status_code == 200 and len(r.json()["items"]) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
