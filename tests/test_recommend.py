"""Tests of s3rec.recommend (Recommender) and `s3rec recommend`: raw ids in and out, exclusion, top-k, errors."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from s3rec import Recommender, S3RecError
from s3rec.cli import main
from s3rec.data import registry
from s3rec.data.tables import load_id_maps
from s3rec.errors import DataError
from s3rec.models.caser import Caser
from s3rec.models.hgn import HGN
from s3rec.recommend import top_k
from s3rec.run_dir import read_histories

# A CSV log with string ids ("u3", "sku7"): raw ids never look like internal ids. 10 users x 7 distinct items
# out of 15; with --min-count 1 every item that occurs is kept.
N_USERS, PER_USER, N_RAW_ITEMS = 10, 7, 15
MAX_LEN = 5  # shorter than the sequences, so truncation to the last max_len items is exercised


def _log() -> dict[str, list[str]]:
    rng = np.random.default_rng(3)
    return {f"u{u}": [f"sku{i + 3}" for i in rng.choice(N_RAW_ITEMS, size=PER_USER, replace=False)]
            for u in range(N_USERS)}


LOG = _log()
ALL_ITEMS = sorted({i for seq in LOG.values() for i in seq})


def write_log(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "log.csv"
    rows = ["user,item,ts"] + [f"{u},{i},{t}" for u, seq in LOG.items() for t, i in enumerate(seq)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


DATA_ARGS = ["--user-col", "user", "--item-col", "item", "--time-col", "ts", "--min-count", "1"]
MODEL_ARGS = {"pop": ["--model", "pop"],
              "sasrec": ["--model", "sasrec", "--epochs", "2", "--set", "encoder.d=16",
                         "--set", f"encoder.max_len={MAX_LEN}", "--set", "encoder.n_layers=1"]}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the network must not be used")

    monkeypatch.setattr(registry, "_urlopen", fail)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One finished pop run and one tiny SASRec run on the CSV log."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("recommend")
    log = write_log(base / "data")
    out = {}
    for name, args in MODEL_ARGS.items():
        out[name] = base / f"run-{name}"
        assert main(["run", *args, "--data", str(log), *DATA_ARGS, "--out", str(out[name]), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def recs(runs) -> dict[str, Recommender]:
    return {name: Recommender.load(d) for name, d in runs.items()}


def brute_force(run_dir: Path, rec: Recommender, history: list[str], exclude: bool) -> list[tuple[str, float]]:
    """(raw item, score) of every rankable item, best first, straight from model.score_all."""
    maps = load_id_maps(run_dir / "id_maps")["items"]
    internal = dict(zip(maps["raw_id"], maps["item"]))
    ids = [int(internal[i]) for i in history if i in internal]
    x = torch.zeros(1, rec.max_len, dtype=torch.long)
    tail = ids[-rec.max_len:]
    x[0, rec.max_len - len(tail):] = torch.tensor(tail)
    with torch.no_grad():
        scores = rec.model.score_all(x)[0].numpy()
    raw_of = dict(zip(maps["item"], maps["raw_id"]))
    cands = [(raw_of[i], float(scores[i])) for i in range(1, len(scores)) if not (exclude and i in set(ids))]
    return sorted(cands, key=lambda c: -c[1])


def check_against_brute_force(result: dict, expected: list[tuple[str, float]], k: int, exact_items: bool) -> None:
    n = min(k, len(expected))
    assert len(result["items"]) == len(result["scores"]) == n
    assert len(set(result["items"])) == n
    assert result["scores"] == sorted(result["scores"], reverse=True)
    np.testing.assert_allclose(result["scores"], [s for _, s in expected[:n]], rtol=1e-6, atol=1e-7)
    score_of = dict(expected)
    for item, score in zip(result["items"], result["scores"]):  # each item carries its own score
        assert score_of[item] == pytest.approx(score, rel=1e-6, abs=1e-7)
    if n < len(expected):  # everything strictly better than the k-th score is in the top k
        kth = result["scores"][-1]
        assert {i for i, s in expected if s > kth + 1e-6} <= set(result["items"])
    if exact_items:
        assert result["items"] == [i for i, _ in expected[:n]]


# ---------------------------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["pop", "sasrec"])
def test_known_users_get_raw_ids_and_no_seen_items(recs, model):
    rec = recs[model]
    users = list(LOG)
    results = rec.recommend(users=users, k=3)
    assert [r["user"] for r in results] == users
    for r, u in zip(results, users):
        assert set(r) == {"user", "items", "scores", "unknown_items"}
        assert r["unknown_items"] == []
        assert all(isinstance(i, str) and i.startswith("sku") for i in r["items"])
        assert all(isinstance(s, float) for s in r["scores"])
        assert not set(r["items"]) & set(LOG[u])  # the whole sequence is excluded, not only the last max_len
        assert len(r["items"]) == 3


@pytest.mark.parametrize("model", ["pop", "sasrec"])
def test_top_k_equals_brute_force_ranking(runs, recs, model):
    rec = recs[model]
    histories = [LOG["u1"], LOG["u4"] + LOG["u5"], ["sku3", "sku9"]]  # the second is longer than max_len
    for exclude in (True, False):
        for k in (1, 4, 100):
            results = rec.recommend(histories=histories, k=k, exclude_seen=exclude)
            for history, r in zip(histories, results):
                expected = brute_force(runs[model], rec, history, exclude)
                # PopRec ties a lot: compare scores and membership; the SASRec scores are distinct floats
                check_against_brute_force(r, expected, k, exact_items=(model == "sasrec"))


def test_known_user_equals_their_history(recs):
    rec = recs["sasrec"]
    by_user = rec.recommend(users=["u2"], k=5)[0]
    by_history = rec.recommend(histories=[LOG["u2"]], k=5)[0]
    assert by_user["user"] == "u2" and by_history["user"] is None
    assert by_user["items"] == by_history["items"]
    np.testing.assert_allclose(by_user["scores"], by_history["scores"], rtol=1e-6)


def test_keep_seen_includes_history_items(recs):
    rec = recs["pop"]
    kept = rec.recommend(users=["u0"], k=100, exclude_seen=False)[0]
    assert set(kept["items"]) == set(ALL_ITEMS)
    excluded = rec.recommend(users=["u0"], k=100)[0]
    assert set(excluded["items"]) == set(ALL_ITEMS) - set(LOG["u0"])


def test_k_is_capped_at_the_rankable_items(recs):
    rec = recs["sasrec"]
    history = ["sku3", "sku3", LOG["u0"][0]]
    n_seen = len(set(history) & set(ALL_ITEMS))
    assert len(rec.recommend(histories=[history], k=1000)[0]["items"]) == len(ALL_ITEMS) - n_seen
    assert len(rec.recommend(histories=[history], k=1000, exclude_seen=False)[0]["items"]) == len(ALL_ITEMS)
    assert len(rec.recommend(users=["u3"], k=len(ALL_ITEMS))[0]["items"]) == len(ALL_ITEMS) - PER_USER


def test_unknown_items_are_reported_and_a_new_user_works(recs):
    rec = recs["sasrec"]
    history = [ALL_ITEMS[0], "no-such-sku", 42, ALL_ITEMS[1]]
    r = rec.recommend(histories=[history], k=3)[0]
    assert r["user"] is None
    assert r["unknown_items"] == ["no-such-sku", 42]
    assert len(r["items"]) == 3 and not {ALL_ITEMS[0], ALL_ITEMS[1]} & set(r["items"])
    same = rec.recommend(histories=[[ALL_ITEMS[0], ALL_ITEMS[1]]], k=3)[0]
    assert same["items"] == r["items"] and same["unknown_items"] == []


def test_integer_raw_ids_compare_as_strings(tmp_path):
    txt = tmp_path / "tiny.txt"  # S3-Rec format: raw ids are numbers
    txt.write_text("7 1 2 3 4\n8 2 3 5 6\n9 1 5 6 4\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["run", "--model", "pop", "--data", str(txt), "--out", str(run), "--quiet"]) == 0
    rec = Recommender.load(run)
    a = rec.recommend(histories=[[1, "2"]], k=2)[0]
    assert a["unknown_items"] == [] and not {"1", "2"} & set(a["items"])
    b = rec.recommend(users=[8, "9"], k=1)
    assert [r["user"] for r in b] == ["8", "9"]
    assert b[0]["items"] == ["1"]  # item 1: two training interactions (users 7 and 9), unseen by user 8


def test_loading_needs_no_data_files_and_uses_histories_npz(runs, tmp_path):
    run = shutil.copytree(runs["sasrec"], tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["data"]["path"] = str(tmp_path / "gone.csv")  # the data are not reachable any more
    (run / "config.json").write_text(json.dumps(config))
    rec = Recommender.load(run)
    assert rec.recommend(users=["u1"], k=3) == Recommender.load(runs["sasrec"]).recommend(users=["u1"], k=3)
    (run / "histories.npz").unlink()
    rec = Recommender.load(run)
    assert len(rec.recommend(histories=[LOG["u1"]], k=3)[0]["items"]) == 3
    with pytest.raises(S3RecError) as e:
        rec.recommend(users=["u1"])
    assert "histories.npz" in str(e.value) and "\n" not in str(e.value)


def test_without_histories_npz_the_data_are_loaded_again(runs, tmp_path):
    run = shutil.copytree(runs["pop"], tmp_path / "run")
    (run / "histories.npz").unlink()
    assert Recommender.load(run).recommend(users=list(LOG), k=4) == Recommender.load(runs["pop"]).recommend(
        users=list(LOG), k=4)


def test_corrupt_histories_npz_is_a_one_line_error(runs, tmp_path):
    run = shutil.copytree(runs["pop"], tmp_path / "run")
    with open(run / "histories.npz", "wb") as f:
        np.savez(f, offsets=np.array([0, 3]), items=np.array([1, 2, 3]))  # one user, the map has ten
    with pytest.raises(S3RecError, match="histories.npz") as e:
        Recommender.load(run).recommend(users=["u1"])
    assert "\n" not in str(e.value)


def test_without_histories_npz_data_under_other_user_ids_are_refused(runs, tmp_path):
    """The same sequences under other user ids would answer for the wrong people: the fallback compares user ids."""
    run = shutil.copytree(runs["pop"], tmp_path / "run")
    (run / "histories.npz").unlink()
    renamed = tmp_path / "renamed.csv"  # u0..u9 -> v0..v9: the same rows in the same order, the same items
    renamed.write_text((runs["pop"].parent / "data" / "log.csv").read_text().replace("\nu", "\nv"))
    config = json.loads((run / "config.json").read_text())
    config["data"]["path"] = str(renamed)
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(S3RecError, match="histories.npz is missing and the data at .*renamed.csv no longer match"):
        Recommender.load(run).recommend(users=["u1"])


@pytest.mark.parametrize("offsets, items, n_items, fragment", [
    ([], [], None, "'offsets' is empty"),  # was a bare IndexError
    ([1, 4], [1, 2, 3, 4], None, "'offsets' must start at 0"),  # items[0] would belong to no user
    ([0, 3], [0, 1, 2], 5, "item ids must be in 1..5"),  # 0 is padding
    ([0, 3], [1, 2, 6], 5, "item ids must be in 1..5"),  # 6 = n_items + 1 is the mask token, not an item
])
def test_read_histories_refuses_arrays_that_are_not_sequences_of_items(tmp_path, offsets, items, n_items, fragment):
    """A hand-edited or foreign histories.npz must be a one-line DataError, not wrong recommendations or a traceback."""
    path = tmp_path / "histories.npz"
    np.savez(path, offsets=np.array(offsets, dtype=np.int64), items=np.array(items, dtype=np.int64))
    with pytest.raises(DataError) as e:
        read_histories(path, n_items=n_items)
    assert str(e.value).startswith(f"{path}: ") and fragment in str(e.value) and "\n" not in str(e.value)
    good = np.array([0, 3]), np.array([1, 2, 5])
    np.savez(path, offsets=good[0], items=good[1])
    assert all(np.array_equal(a, b) for a, b in zip(read_histories(path, n_users=1, n_items=5), good))  # the bounds


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated zip", b"garbage"])
def test_unreadable_histories_npz_is_a_one_line_error_at_load(runs, tmp_path, content):
    run = shutil.copytree(runs["pop"], tmp_path / "run")
    (run / "histories.npz").write_bytes(content)  # a truncated copy, or not a numpy file at all
    with pytest.raises(S3RecError, match="histories.npz: cannot read") as e:
        Recommender.load(run)
    assert "\n" not in str(e.value)


def test_a_user_result_does_not_depend_on_bare_histories_beside_it(runs, tmp_path):
    """Caser adds the user's embedding P_u: a known user keeps it when a bare history shares the call."""
    caser = tmp_path / "caser"
    assert main(["run", "--model", "caser", "--epochs", "2", "--set", "encoder.d=16", "--set", f"encoder.max_len={MAX_LEN}",
                 "--data", str(runs["pop"].parent / "data" / "log.csv"), *DATA_ARGS, "--out", str(caser), "--quiet"]) == 0
    rec = Recommender.load(caser)
    alone = [rec.rank([rec.user_query(u)], k=4)[0] for u in ("u2", "u5")]
    bare = rec.rank([rec.history_query(LOG["u2"])], k=4)[0]
    mixed = rec.rank([rec.user_query("u2"), rec.history_query(LOG["u2"]), rec.user_query("u5")], k=4)
    assert [r["user"] for r in mixed] == ["u2", None, "u5"]  # input order
    for got, want in zip(mixed, [alone[0], bare, alone[1]]):
        assert got["items"] == want["items"]
        np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-8)  # batch-size rounding
    assert mixed[0]["scores"] != mixed[1]["scores"]  # the user's embedding matters, so the test can fail


@pytest.mark.parametrize("model_class", [Caser, HGN])
def test_a_known_user_of_a_user_aware_model_is_scored_with_their_embedding(model_class):
    """users= must pass the user's row to score_all: without it Caser/HGN drop the user embedding they trained."""
    torch.manual_seed(0)
    model = model_class(12, 3, d=8, L=3)  # untrained weights will do: only what goes into score_all is checked
    items = [f"i{i}" for i in range(1, 13)]
    histories = (np.array([0, 4, 8, 12]), np.arange(1, 13))  # users a, b, c: items 1-4, 5-8, 9-12
    rec = Recommender(model, [None, *items], ["a", "b", "c"], max_len=3, histories=histories)
    got = rec.recommend(users=["b"], k=4)[0]
    with torch.no_grad():
        scores = model.score_all(torch.tensor([[6, 7, 8]]), torch.tensor([1]))[0]  # last max_len items, row 1
    scores[[0, 5, 6, 7, 8]] = -torch.inf  # padding and b's history
    best = sorted(range(13), key=lambda i: (-scores[i].item(), i))[:4]
    assert got["items"] == [f"i{i}" for i in best]
    np.testing.assert_allclose(got["scores"], scores[best].numpy(), rtol=1e-6)
    bare = rec.recommend(histories=[["i5", "i6", "i7", "i8"]], k=4)[0]  # the same history, no user
    assert np.abs(np.subtract(sorted(bare["scores"]), sorted(got["scores"]))).max() > 1e-3  # the embedding matters


@pytest.mark.parametrize("kwargs, fragment", [
    ({"users": ["u1", "nobody"]}, "'nobody'"),
    ({"histories": [LOG["u1"], ["x", "y"]]}, "histories[1]: history has no known items"),
    ({"histories": [[]]}, "history has no known items"),
    ({"histories": [["sku3", None]]}, "histories[0]: item ids are strings or integers, got null at position 1"),
    ({"histories": [[True, "sku3"]]}, "got true at position 0"),
    ({"histories": [[["sku3"], "sku4"]]}, 'got ["sku3"] at position 0'),
    ({"histories": [[3.0]]}, "got 3.0 at position 0"),
    ({"users": ["u1"], "k": 0}, "k must be a positive integer"),
    ({"users": ["u1"], "k": -3}, "k must be a positive integer"),
    ({}, "exactly one of"),
    ({"users": ["u1"], "histories": [["sku3"]]}, "exactly one of"),
])
def test_bad_requests_are_one_line_errors(recs, kwargs, fragment):
    with pytest.raises(S3RecError) as e:
        recs["pop"].recommend(**kwargs)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_missing_run_directory(tmp_path):
    with pytest.raises(S3RecError, match="run directory not found"):
        Recommender.load(tmp_path / "nothere")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def one_line_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("s3rec: error: ") and "Traceback" not in err, err
    return lines[0]


def test_cli_round_trip_with_input_and_out(runs, recs, tmp_path, capsys):
    requests = [{"history": LOG["u1"][:3] + ["unknown-1"]}, {"user": "u4"}, {"history": ["sku3"]}]
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps(r) for r in requests[:2]) + "\n\n" + json.dumps(requests[2]) + "\n")
    out = tmp_path / "recs.jsonl"
    assert main(["recommend", "--run", str(runs["sasrec"]), "--input", str(inp), "--k", "4", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    got = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    rec = recs["sasrec"]
    want = [rec.recommend(histories=[requests[0]["history"]], k=4)[0], rec.recommend(users=["u4"], k=4)[0],
            rec.recommend(histories=[["sku3"]], k=4)[0]]
    assert [g["items"] for g in got] == [w["items"] for w in want]
    assert [g["user"] for g in got] == [None, "u4", None]
    assert got[0]["unknown_items"] == ["unknown-1"]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g["scores"], w["scores"], rtol=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))

    assert "sku3" not in got[2]["items"]
    assert main(["recommend", "--run", str(runs["sasrec"]), "--input", str(inp), "--k", "100", "--keep-seen"]) == 0
    kept = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(kept) == 3 and all(sorted(r["items"]) == ALL_ITEMS for r in kept)


def test_cli_users_to_stdout(runs, recs, capsys):
    assert main(["recommend", "--run", str(runs["pop"]), "--users", "u1, u2", "--k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == recs["pop"].recommend(users=["u1", "u2"], k=2)


@pytest.mark.parametrize("line, fragment", [
    ("{not json", "not valid JSON"),
    ('["sku3"]', "expected an object"),
    ('{"history": ["sku3"], "user": "u1"}', "expected an object"),
    ('{"histroy": ["sku3"]}', "expected an object"),
    ('{"history": "sku3"}', '"history" must be a list'),
    ('{"user": ["u1"]}', '"user" must be'),
    ('{"user": "nobody"}', "unknown user 'nobody'"),
    ('{"history": ["x"]}', "history has no known items"),
    ('{"history": [null, "sku3"]}', "item ids are strings or integers, got null at position 0"),
])
def test_cli_malformed_line_names_file_and_line(runs, tmp_path, capsys, line, fragment):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"user": "u1"}\n\n' + line + "\n" + '{"user": "u2"}\n')
    out = tmp_path / "recs.jsonl"
    assert main(["recommend", "--run", str(runs["pop"]), "--input", str(inp), "--out", str(out)]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "in.jsonl:3:" in err and fragment in err, err
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_cli_input_from_standard_input_with_a_byte_order_mark(runs, recs, monkeypatch, capsys):
    stdin = io.TextIOWrapper(io.BytesIO('\ufeff{"user": "u1"}\n{"history": ["sku3"]}\n'.encode("utf-8")))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["recommend", "--run", str(runs["pop"]), "--input", "-", "--k", "2"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert got == [*recs["pop"].recommend(users=["u1"], k=2), *recs["pop"].recommend(histories=[["sku3"]], k=2)]


def test_cli_input_that_is_not_utf8_names_the_line(runs, tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'{"user": "u1"}\n{"history": ["caf\xe9"]}\n')
    assert main(["recommend", "--run", str(runs["pop"]), "--input", str(inp)]) == 2
    assert "in.jsonl:2: not UTF-8 text" in one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("case", ["unknown-user", "k-zero", "missing-run", "file-run", "pretraining-run", "missing-input",
                                  "empty-input"])
def test_cli_errors_leave_no_output(runs, tmp_path, capsys, case):
    out = tmp_path / "recs.jsonl"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    pretraining = tmp_path / "pt"  # what `s3rec run` leaves in <run>/pretrain (`s3rec pretrain` adds a config.json)
    pretraining.mkdir()
    (pretraining / "last.pt").write_bytes(b"")
    args, fragment = {
        "unknown-user": (["--run", str(runs["pop"]), "--users", "u1,ghost"], "'ghost'"),
        "k-zero": (["--run", str(runs["pop"]), "--users", "u1", "--k", "0"], "k must be a positive integer"),
        "missing-run": (["--run", str(tmp_path / "nothere"), "--users", "u1"], "run directory not found"),
        "file-run": (["--run", str(empty), "--users", "u1"], "empty.jsonl: not a directory; pass a run directory"),
        "pretraining-run": (["--run", str(pretraining), "--users", "u1"],
                            "a pre-training folder, which has no trained model; fine-tune from one of its checkpoints"),
        "missing-input": (["--run", str(runs["pop"]), "--input", str(tmp_path / "no.jsonl")], "no.jsonl: file not found"),
        "empty-input": (["--run", str(runs["pop"]), "--input", str(empty)], "no requests"),
    }[case]
    assert main(["recommend", *args, "--out", str(out)]) == 2
    assert fragment in one_line_error(capsys.readouterr().err)
    assert not out.exists()


def test_cli_needs_users_or_input(runs, capsys):
    with pytest.raises(SystemExit) as e:
        main(["recommend", "--run", str(runs["pop"])])
    assert e.value.code == 2
    assert "--users" in capsys.readouterr().err


def test_run_directory_has_the_id_maps_used(runs):
    items = pd.read_csv(runs["pop"] / "id_maps" / "items.csv", dtype=str)
    assert sorted(items["raw_id"]) == ALL_ITEMS  # raw ids differ from the internal ids 1..n


def test_attribute_aware_model_recommends_from_its_run_directory(tmp_path):
    """GRU4RecF needs the item attributes to be rebuilt: they travel in the run directory."""
    from s3rec.cli import main
    from s3rec.data.s3rec_format import save_s3rec_format
    from s3rec.data.synthetic import make_synthetic
    from s3rec.recommend import Recommender

    path = save_s3rec_format(make_synthetic(n_users=40, n_items=60, n_attributes=12, n_topics=6, seed=1), tmp_path, "syn")
    out = tmp_path / "run"
    assert main(["run", "--model", "gru4recf", "--data", str(path), "--out", str(out), "--epochs", "1",
                 "--set", "encoder.d=16", "--set", "encoder.max_len=10", "--quiet"]) == 0
    recs = Recommender.load(out).recommend(users=["1"], k=5)
    assert len(recs[0]["items"]) == 5


def test_top_k_breaks_ties_by_ascending_id_so_each_k_is_a_prefix_of_the_next():
    gen = torch.Generator().manual_seed(0)
    for levels in (2, 4, 40, 0):  # from ties everywhere to none (0: continuous scores)
        scores = torch.randint(0, levels, (6, 30), generator=gen).float() if levels else torch.randn(6, 30, generator=gen)
        scores[0, :5] = -torch.inf
        full = torch.sort(scores, dim=1, descending=True, stable=True)  # the order asked for, over every item
        for k in range(1, 31):
            values, index = top_k(scores, k)
            assert torch.equal(index, full.indices[:, :k]) and torch.equal(values, full.values[:, :k]), (levels, k)
    values, index = top_k(torch.tensor([[1.0, 5.0, 5.0, 2.0, 5.0]]), 2)
    assert index.tolist() == [[1, 2]] and values.tolist() == [[5.0, 5.0]]


def test_recommendations_of_a_popularity_run_do_not_depend_on_k(tmp_path):
    """PopRec's counts tie often: the top 3 are the first 3 of the top 10."""
    rng = np.random.default_rng(3)
    rows = ["user_id,item_id,timestamp"] + [f"u{u},i{rng.integers(12)},{t}" for u in range(20) for t in range(6)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert main(["run", "--model", "pop", "--data", str(tmp_path / "log.csv"), "--min-count", "1",
                 "--out", str(run), "--quiet"]) == 0
    rec = Recommender.load(run)
    users = [f"u{u}" for u in range(20)]
    for short, long in zip(rec.recommend(users=users, k=3), rec.recommend(users=users, k=10)):
        assert short["items"] == long["items"][:3] and short["scores"] == long["scores"][:3]
