"""`s3rec experiment ...` end to end on a tiny synthetic set: files, numbers equal to the runs', reuse."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

from s3rec import experiments
from s3rec.cli import main
from s3rec.config import RunConfig
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.synthetic import make_synthetic
from s3rec.cli.experiment import command_line

TINY = ["--set", "encoder.d=16", "--set", "encoder.max_len=8", "--set", "encoder.n_layers=1",
        "--pretrain-epochs", "1", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    data = make_synthetic(n_users=70, n_items=50, avg_len=8, n_attributes=8, n_topics=4, seed=5)
    return str(save_s3rec_format(data, tmp_path_factory.mktemp("data"), "syn"))


def experiment(name, data_path, out, *extra):
    """Run `s3rec experiment NAME` twice: the second call must reuse every run and pre-training."""
    args = ["experiment", name, "--data", data_path, "--out", str(out), *TINY, *extra]
    assert main(args) == 0
    for ext in ("csv", "png", "md"):
        assert (out / f"{name}.{ext}").stat().st_size > 0
    assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stamps = {p: p.stat().st_mtime_ns for p in [*out.glob("*/metrics.json"), *out.glob("*/*.pt")]}
    csv_text = (out / f"{name}.csv").read_text()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert sorted([*out.glob("*/metrics.json"), *out.glob("*/*.pt")]) == sorted(stamps)  # nothing new either
    assert (out / f"{name}.csv").read_text() == csv_text
    return read_csv(out / f"{name}.csv")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def metrics_of(row):
    return json.loads((Path(row["run_dir"]) / "metrics.json").read_text())["test"][row["protocol"]]


def assert_rows_are_the_runs(rows):
    for row in rows:
        m = metrics_of(row)
        assert all(float(row[k]) == m[k] for k in ("HR@10", "NDCG@10", "MRR")), row


def config_of(run_dir):
    return json.loads((Path(run_dir) / "config.json").read_text())


def bar_heights(ax):
    return [[p.get_height() for p in c] for c in ax.containers if isinstance(c, BarContainer)]


def curves(ax):
    """legend label -> (x, y) of every line drawn with errorbar."""
    return {c.get_label(): (list(c.lines[0].get_xdata()), list(c.lines[0].get_ydata()))
            for c in ax.containers if isinstance(c, ErrorbarContainer)}


def test_ablation(data_path, tmp_path):
    rows = experiment("ablation", data_path, tmp_path)
    assert [r["label"] for r in rows] == ["S3-Rec", "¬AAP", "¬MIP", "¬MAP", "¬SP", "SASRec"]
    assert_rows_are_the_runs(rows)
    for row, removed in zip(rows[1:5], ("aap", "mip", "map", "sp")):
        cfg = config_of(row["run_dir"])
        assert cfg["init"].endswith(f"pretrain-no-{removed}/pretrain-epoch1.pt")
        pre = json.loads((tmp_path / f"pretrain-no-{removed}" / "pretrain_log.jsonl").read_text().splitlines()[0])
        assert removed not in pre and all(o in pre for o in {"aap", "mip", "map", "sp"} - {removed})
    assert config_of(rows[5]["run_dir"])["init"] is None
    fig = experiments.ablation(setup(data_path, tmp_path), "sasrec").figure  # reuses every run
    ndcg, hr = (bar_heights(ax)[0] for ax in fig.axes)
    assert ndcg == [float(r["NDCG@10"]) for r in rows] and hr == [float(r["HR@10"]) for r in rows]
    summary = (tmp_path / "ablation.md").read_text()
    assert "| ¬MIP |" in summary and "![ablation](ablation.png)" in summary
    assert "Warning" not in summary
    # a full model whose SP and MIP losses never moved (as in the Beauty ablation's SP): the summary says so
    log = tmp_path / "pretrain-full" / "pretrain_log.jsonl"
    first = json.loads(log.read_text().splitlines()[0])
    log.write_text("".join(json.dumps({**first, "epoch": e, "aap": first["aap"] / e}) + "\n" for e in (1, 2, 3)))
    experiments.ablation(setup(data_path, tmp_path), "sasrec")
    warnings = [line for line in (tmp_path / "ablation.md").read_text().splitlines() if line.startswith("Warning")]
    assert warnings == [f"Warning: in S3-Rec's pre-training the {k} loss never left its epoch-1 value "
                        f"({first[k.lower()]:.4f} -> {first[k.lower()]:.4f}): that objective did not learn, "
                        f"so ¬{k} is compared with a model that did not use it either." for k in ("MIP", "SP")]


def setup(data_path, out, seeds=(1,)):
    """The Python API's Setup with the options of TINY."""
    def config_for(model):
        cfg = RunConfig(model=model)
        cfg.data.path = data_path
        cfg.encoder.d, cfg.encoder.max_len, cfg.encoder.n_layers = 16, 8, 1
        cfg.pretrain.epochs, cfg.finetune.epochs = 1, 2
        if model == "gru4recf":
            cfg.encoder.dropout = 0.25  # GRU4Rec's run default, as the CLI fills it in
        return cfg
    return experiments.Setup(config_for, list(seeds), Path(out), log=lambda *a, **k: None)


def test_transfer(data_path, tmp_path):
    # AutoInt picks its epoch on the sampled validation: 20 negatives fit this 50-item set
    rows = experiment("transfer", data_path, tmp_path, "--set", "eval.n_negatives=20")
    assert_rows_are_the_runs(rows)
    kinds = {(r["model"], r["label"]) for r in rows}
    models = ("gru4rec", "gru4recf", "sasrec", "sasrecf", "autoint", "caser")
    assert kinds == {(m, "none") for m in models} | {(m, "encoder") for m in models[:4]} | {
        ("autoint", "embeddings"), ("caser", "embeddings")}
    inits = {r["model"]: config_of(r["run_dir"])["init"] for r in rows if r["label"] != "none"}
    for m in ("gru4rec", "gru4recf", "sasrecf"):
        assert Path(inits[m]).parent.name == f"pretrain-{m}"
    # SASRec, Caser and AutoInt (all of width 16 here) share one S3-Rec pre-training
    assert {Path(inits[m]).parent.name for m in ("sasrec", "caser", "autoint")} == {"pretrain-s3rec-d16"}
    assert sorted(p.name for p in tmp_path.glob("pretrain-*")) == [
        "pretrain-gru4rec", "pretrain-gru4recf", "pretrain-s3rec-d16", "pretrain-sasrecf"]


def test_sparsity(data_path, tmp_path):
    rows = experiment("sparsity", data_path, tmp_path, "--fractions", "0.5,1", "--baselines", "sasrec")
    assert_rows_are_the_runs(rows)
    assert [(r["label"], float(r["train_fraction"])) for r in rows] == [
        ("S3-Rec", 0.5), ("SASRec", 0.5), ("S3-Rec", 1.0), ("SASRec", 1.0)]
    for r in rows:
        assert config_of(r["run_dir"])["data"]["train_fraction"] == float(r["train_fraction"])
    half = config_of(rows[0]["run_dir"])["init"]
    assert "pretrain-50pct" in half
    fig = experiments.sparsity(setup(data_path, tmp_path), [0.5, 1.0], ["sasrec"]).figure
    lines = curves(fig.axes[0])
    assert lines["S3-Rec"] == ([50.0, 100.0], [float(rows[0]["NDCG@10"]), float(rows[2]["NDCG@10"])])
    assert lines["SASRec"][1] == [float(rows[1]["NDCG@10"]), float(rows[3]["NDCG@10"])]
    assert "Warning" not in (tmp_path / "sparsity.md").read_text()
    log = tmp_path / "pretrain-50pct" / "pretrain_log.jsonl"  # a 50% pre-training whose SP never moved
    first = json.loads(log.read_text().splitlines()[0])
    log.write_text("".join(json.dumps({**first, "epoch": e, "mip": first["mip"] / e}) + "\n" for e in (1, 2, 3)))
    experiments.sparsity(setup(data_path, tmp_path), [0.5, 1.0], ["sasrec"])
    warnings = [line for line in (tmp_path / "sparsity.md").read_text().splitlines() if line.startswith("Warning")]
    assert warnings == [f"Warning: in the 50% pre-training the SP loss never left its epoch-1 value "
                        f"({first['sp']:.4f} -> {first['sp']:.4f}): that objective did not learn."]


def test_pretrain_epochs(data_path, tmp_path):
    rows = experiment("pretrain-epochs", data_path, tmp_path, "--pretrain-epochs", "2", "--set", "pretrain.save_every=1")
    assert_rows_are_the_runs(rows)
    assert [(r["label"], r["pretrain_epochs"]) for r in rows] == [
        ("no pre-training (SASRec)", "0"), ("S3-Rec", "1"), ("S3-Rec", "2")]
    assert [Path(config_of(r["run_dir"])["init"] or "-").name for r in rows] == [
        "-", "pretrain-epoch1.pt", "pretrain-epoch2.pt"]
    assert len(list(tmp_path.glob("pretrain*/pretrain_log.jsonl"))) == 1  # one pre-training serves every K


def test_pretrain_epochs_at_chosen_points(data_path, tmp_path, capsys):
    rows = experiment("pretrain-epochs", data_path, tmp_path, "--pretrain-epochs", "3", "--set", "pretrain.save_every=1",
                      "--points", "3,1")
    assert_rows_are_the_runs(rows)
    assert [(r["label"], r["pretrain_epochs"]) for r in rows] == [
        ("no pre-training (SASRec)", "0"), ("S3-Rec", "1"), ("S3-Rec", "3")]
    assert not list(tmp_path.glob("**/s3rec-epoch2-seed1"))  # K = 2 was saved but not asked for
    out = tmp_path / "bad"
    for points in ("4", "0,1", "x", ","):  # beyond N, K = 0 (that is SASRec), not a number, none
        assert main(["experiment", "pretrain-epochs", "--data", data_path, *TINY[:-3], "--pretrain-epochs", "3",
                     "--points", points, "--out", str(out)]) == 2
    assert main(["experiment", "pretrain-epochs", "--data", data_path, *TINY[:-3], "--pretrain-epochs", "3",
                 "--set", "pretrain.save_every=2", "--points", "1", "--out", str(out)]) == 2  # epoch 1 is not saved
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 5 and all(e.startswith("s3rec: error: ") and "--points" in e for e in errors)
    assert not out.exists()


def test_convergence_averages_the_seeds_logs(data_path, tmp_path):
    rows = experiment("convergence", data_path, tmp_path, "--seeds", "1,2", "--epochs", "3")
    for r in rows:  # each row is a line of its run's log
        log = [json.loads(x) for x in (Path(r["run_dir"]) / "finetune_log.jsonl").read_text().splitlines()]
        assert float(r["valid_NDCG@10"]) == log[int(r["epoch"]) - 1]["valid_NDCG@10"]
    assert {(r["label"], r["seed"]) for r in rows} == {("S3-Rec", "1"), ("S3-Rec", "2"), ("SASRec", "1"), ("SASRec", "2")}
    s = setup(data_path, tmp_path, seeds=(1, 2))
    s.config_for = lambda model, f=s.config_for: _with_epochs(f(model), 3)
    lines = curves(experiments.convergence(s, ["sasrec"]).figure.axes[0])
    for label in ("S3-Rec", "SASRec"):
        by_epoch = {}
        for r in rows:
            if r["label"] == label:
                by_epoch.setdefault(int(r["epoch"]), []).append(float(r["valid_NDCG@10"]))
        assert lines[label][0] == sorted(by_epoch)
        assert np.allclose(lines[label][1], [np.mean(by_epoch[e]) for e in sorted(by_epoch)])


def _with_epochs(cfg, n):
    cfg.finetune.epochs = n
    return cfg


def test_bad_input_is_a_one_line_error_before_any_run(data_path, tmp_path, capsys):
    base = ["experiment", "ablation", "--data", data_path, "--out", str(tmp_path / "a"), *TINY]
    assert main([*base, "--seeds", "1,x"]) == 2
    assert main(["experiment", "transfer", "--data", data_path, "--models", "gru4rec,fm", *TINY]) == 2
    assert main(["experiment", "sparsity", "--data", data_path, "--fractions", "0,1", *TINY]) == 2
    assert main(["experiment", "pretrain-epochs", "--data", data_path, *TINY[:-3], "--pretrain-epochs", "0"]) == 2
    assert main([*base, "--baseline", "autoint", "--loss", "ce"]) == 2  # found before S3-Rec's runs start
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 5 and all(e.startswith("s3rec: error: ") for e in errors)
    assert "--models" in errors[1] and "fractions" in errors[2] and "autoint" in errors[4]
    assert not (tmp_path / "a").exists()


def test_a_changed_option_is_not_silently_reused(data_path, tmp_path, capsys):
    out = tmp_path / "c"
    args = ["experiment", "convergence", "--data", data_path, "--out", str(out), *TINY]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--set", "finetune.lr=0.01"]) == 2
    assert "finetune.lr=0.001, this call asks for 0.01" in capsys.readouterr().err


def test_summary_quotes_the_command(data_path, tmp_path):
    from s3rec.cli import make_parser

    args = make_parser().parse_args(["experiment", "ablation", "--data", "x.txt", "--seeds", "1,2", "--set", "a.b=1",
                                     "--quiet"])
    assert command_line(args) == "s3rec experiment ablation --data x.txt --seeds 1,2 --set a.b=1 --quiet"


def test_convergence_refuses_curves_validated_under_different_protocols(data_path, tmp_path, capsys):
    args = ["experiment", "convergence", "--data", data_path, "--out", str(tmp_path), *TINY, "--baselines", "autoint"]
    assert main(args) == 2  # AutoInt validates on sampled ranking by default, S3-Rec on full
    err = capsys.readouterr().err.strip()
    assert "autoint validates on sampled ranking" in err and "eval.selection" in err and "\n" not in err
    assert not list(tmp_path.glob("*/metrics.json"))


def test_plan_lists_the_missing_work_with_each_run_after_its_pretraining(data_path, tmp_path):
    from functools import partial

    from s3rec.cli import make_parser
    from s3rec.cli.options import build_config
    from s3rec.parallel import plan

    args = make_parser().parse_args(["experiment", "ablation", "--data", data_path, *TINY])
    setup = experiments.Setup(lambda m: build_config(args, m), seeds=[1, 2], out=tmp_path / "a")
    jobs = plan(partial(experiments.ablation, baseline="sasrec"), setup)
    assert not (tmp_path / "a").exists()  # planning runs and writes nothing
    pre = [j for j in jobs if j.kind == "pretrain"]
    assert [j.name for j in pre] == ["pretrain-full", "pretrain-no-aap", "pretrain-no-mip", "pretrain-no-map",
                                     "pretrain-no-sp"]
    runs = {j.name: j for j in jobs if j.kind == "run"}
    assert sorted(runs) == sorted([f"s3rec-{v}-seed{s}" for v in ("full", "no-aap", "no-mip", "no-map", "no-sp")
                                   for s in (1, 2)] + ["sasrec-seed1", "sasrec-seed2"])
    assert runs["s3rec-no-map-seed2"].after == tmp_path / "a" / "pretrain-no-map"
    assert runs["s3rec-no-map-seed2"].cfg.seed == 2 and runs["s3rec-no-map-seed2"].cfg.pretrain.objectives.map == 0
    assert runs["sasrec-seed1"].after is None
    assert plan(partial(experiments.ablation, baseline="sasrec"), setup)  # still missing: nothing ran


def test_jobs_give_the_numbers_of_one_job_and_leave_nothing_to_do(data_path, tmp_path, capsys, one_thread):
    from s3rec.cli import make_parser
    from s3rec.cli.options import build_config
    from s3rec.parallel import plan

    base = ["experiment", "convergence", "--data", data_path, *TINY]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    assert main([*base, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0  # the runs wait for the pre-training
    one, two = read_csv(tmp_path / "one" / "convergence.csv"), read_csv(tmp_path / "two" / "convergence.csv")
    assert len(one) == 4 and [{**r, "run_dir": ""} for r in one] == [{**r, "run_dir": ""} for r in two]
    assert (tmp_path / "two" / "pretrain" / "config.json").is_file()
    args = make_parser().parse_args([*base, "--out", str(tmp_path / "two")])
    setup = experiments.Setup(lambda m: build_config(args, m), seeds=[1], out=tmp_path / "two")
    assert plan(experiments.convergence, setup) == []


def test_a_failing_job_stops_the_others_with_a_one_line_error(data_path, tmp_path, capsys):
    from s3rec.io import folder_lock

    args = ["experiment", "convergence", "--data", data_path, "--out", str(tmp_path), *TINY, "--jobs", "2"]
    with folder_lock(tmp_path / "sasrec-seed1"):  # as if another process were writing that run
        assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "sasrec-seed1: in use by another s3rec run" in err and "\n" not in err
    assert not (tmp_path / "convergence.csv").exists()
    assert main(args[:-2]) == 0  # the folders the workers left are resumed
    assert (tmp_path / "convergence.csv").is_file()
    assert main(["experiment", "convergence", "--data", data_path, "--out", str(tmp_path), *TINY, "--jobs", "0"]) == 2


def test_a_pretraining_two_models_share_is_planned_once(data_path, tmp_path):
    from functools import partial

    from s3rec.cli import make_parser
    from s3rec.cli.options import build_config
    from s3rec.parallel import plan

    args = make_parser().parse_args(["experiment", "transfer", "--data", data_path, *TINY])
    setup = experiments.Setup(lambda m: build_config(args, m), seeds=[1], out=tmp_path)
    jobs = plan(partial(experiments.transfer, models=["caser", "autoint"]), setup)  # both 16 wide here
    assert [j.name for j in jobs if j.kind == "pretrain"] == ["pretrain-s3rec-d16"]
    assert {j.name: j.after for j in jobs if j.kind == "run"} == {
        "caser-seed1": None, "caser-pretrained-seed1": tmp_path / "pretrain-s3rec-d16",
        "autoint-seed1": None, "autoint-pretrained-seed1": tmp_path / "pretrain-s3rec-d16"}


def test_sparsity_summary_counts_the_fractions_where_s3rec_leads_every_baseline(tmp_path):
    from s3rec.config import RunConfig
    from s3rec.experiments.common import Setup
    from s3rec.experiments.sparsity import summarise

    setup = Setup(config_for=lambda model: RunConfig(model=model), seeds=[1], out=tmp_path)
    ndcg = {"S3-Rec": ([50.0, 100.0], [(0.30, 0.0), (0.20, 0.0)]),
            "SASRec": ([50.0, 100.0], [(0.10, 0.0), (0.25, 0.0)]),
            "GRU4Rec": ([50.0, 100.0], [(0.20, 0.0), (0.05, 0.0)])}
    text = summarise(setup, [], {"NDCG@10": ndcg}, "full")
    assert "above every baseline's at 1 of 2 fractions" in text
    assert "| 50% | 0.3000 | 0.1000 | 0.2000 | +50.0% |" in text  # against the best baseline, 0.2
    assert "| 100% | 0.2000 | 0.2500 | 0.0500 | -20.0% |" in text


@pytest.mark.parametrize("values, said", [
    ((0.20, 0.25, 0.18, 0.30), "lowered NDCG@10 for ¬AAP, ¬MAP; the largest drop is ¬MAP (0.1800 vs 0.2200)"),
    ((0.23, 0.25, 0.24, 0.30), "lowered NDCG@10 for none of them; the smallest rise is ¬AAP (0.2300 vs 0.2200)"),
])
def test_ablation_summary_names_drops_as_drops(tmp_path, values, said):
    from s3rec.config import RunConfig
    from s3rec.experiments.ablation import summarise
    from s3rec.experiments.common import Setup

    setup = Setup(config_for=lambda model: RunConfig(model=model), seeds=[1], out=tmp_path)
    labels = ("S3-Rec", "¬AAP", "¬MIP", "¬MAP", "¬SP")
    ndcg = dict(zip(labels, [(v, 0.0) for v in (0.22, *values)]))
    text = summarise(setup, [], {"NDCG@10": ndcg, "HR@10": ndcg}, "full")
    assert said in text
