"""`s3rec compare`: runs and reuse end to end on a tiny synthetic set, the table's numbers and marks
against the run directories, and the significance marker on hand-made per-user values."""

import copy
import csv
import json

import numpy as np
import pytest
from scipy import stats

import s3rec.runs
from s3rec.cli import main
from s3rec.compare import compare
from s3rec.evaluation.significance import paired_tests
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.evaluation.metrics import METRIC_NAMES
from s3rec.io import write_json
from s3rec.models.factory import default_config

TINY = ["--set", "encoder.d=16", "--set", "encoder.max_len=10", "--set", "encoder.n_layers=1",
        "--pretrain-epochs", "1", "--epochs", "2", "--quiet"]
MODELS = ["pop", "gru4rec", "s3rec"]
SEEDS = [1, 2]


def without_pretraining(argv: list[str]) -> list[str]:
    """argv without its --pretrain-epochs N (an error beside --init)."""
    i = argv.index("--pretrain-epochs")
    return argv[:i] + argv[i + 2:]


def md_rows(md: str, protocol: str) -> dict[str, list[str]]:
    """metric -> cells (models..., Improv.) of the markdown table of one protocol."""
    section = md.split(f"## {protocol} ranking")[1].split("\n\n")[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()[2:]]
    return {r[0]: r[1:] for r in rows}


def test_compare_end_to_end_numbers_marks_and_reuse(tmp_path, monkeypatch, capsys):
    path = save_s3rec_format(make_synthetic(n_users=100, n_items=150, avg_len=10, n_attributes=12, n_topics=6, seed=3), tmp_path, "syn")
    out = tmp_path / "cmp"
    args = ["compare", "--data", str(path), "--models", ",".join(MODELS), "--seeds", "1,2", "--out", str(out),
            "--protocol", "both", *TINY]
    assert main(args) == 0
    printed = capsys.readouterr().out
    md = (out / "comparison.md").read_text()
    assert printed == md
    assert (out / "pretrain" / "pretrain-epoch1.pt").is_file()
    metrics = {m: [json.loads((out / f"{m}-seed{s}" / "metrics.json").read_text()) for s in SEEDS] for m in MODELS}
    gru = json.loads((out / "gru4rec-seed1" / "config.json").read_text())
    assert gru["encoder"]["dropout"] == 0.25 and gru["encoder"]["d"] == 16  # paper default, then --set

    rows = list(csv.DictReader((out / "comparison.csv").open()))
    table = {(r["protocol"], r["metric"]): r for r in rows}
    for protocol in ("full", "sampled"):
        cells = md_rows(md, protocol)
        for metric in METRIC_NAMES:
            row = table[(protocol, metric)]
            means = {}
            for i, m in enumerate(MODELS):
                values = np.array([r["test"][protocol][metric] for r in metrics[m]])
                mean, std = values.mean(), values.std(ddof=1)
                assert float(row[f"{m}_mean"]) == pytest.approx(mean, abs=1e-12)
                assert float(row[f"{m}_std"]) == pytest.approx(std, abs=1e-12)
                assert f"{mean:.4f} ± {std:.4f}" in cells[metric][i]
                means[m] = round(mean, 4)
            ranked = sorted(set(means.values()), reverse=True)
            for i, m in enumerate(MODELS):  # bold = best printed mean, underline = second
                cell = cells[metric][i]
                assert cell.startswith("**") == (means[m] == ranked[0])
                assert cell.startswith("<u>") == (len(ranked) > 1 and means[m] == ranked[1])
            best = max(["pop", "gru4rec"], key=lambda m: float(row[f"{m}_mean"]))
            assert row["best_baseline"] == best
            if float(row[f"{best}_mean"]) > 0:
                assert float(row["improvement"]) == pytest.approx(float(row["s3rec_mean"]) / float(row[f"{best}_mean"]) - 1)
                assert cells[metric][-1] == f"{100 * float(row['improvement']):+.2f}%"
            per_user = {m: np.mean([np.load(out / f"{m}-seed{s}" / "per_user.npz")[f"test/{protocol}/{metric}"]
                                    for s in SEEDS], axis=0) for m in ("s3rec", best)}
            p_t, p_w = paired_tests(per_user["s3rec"], per_user[best])
            assert row["p_ttest"] == repr(p_t) and row["p_wilcoxon"] == repr(p_w)
            improved = float(row["s3rec_mean"]) > float(row[f"{best}_mean"])
            assert ("\\*" in cells[metric][2]) == (p_t < 0.01 and improved)  # the star marks a significant gain
            assert ("†" in cells[metric][2]) == (p_t < 0.01 and not improved)
    secs = {m: np.mean([s3rec.runs.run_seconds(r) for r in metrics[m]]) for m in MODELS}  # the stages, summed
    assert float(table[("", "seconds")]["gru4rec_mean"]) == pytest.approx(secs["gru4rec"])
    tex = (out / "comparison.tex").read_text()
    assert "\\textbf{" in tex and "\\underline{" in tex and "S3-Rec" in tex and "Improv." in tex

    # a second call re-runs nothing: no pre-training, no run, the same files
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json")}
    stamps[out / "pretrain" / "pretrain-epoch1.pt"] = (out / "pretrain" / "pretrain-epoch1.pt").stat().st_mtime_ns

    def no_more(*a, **k):
        raise AssertionError("compare re-ran a finished run")

    monkeypatch.setattr(s3rec.runs, "run", no_more)
    monkeypatch.setattr(s3rec.runs, "pretrain", no_more)
    assert main(args) == 0
    assert capsys.readouterr().out == md
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (out / "comparison.md").read_text() == md


def fake_runs(out, configs, per_user, seeds=SEEDS):
    """Finished run directories that run_or_reuse reads back: config.json, metrics.json, per_user.npz."""
    for model, cfg in configs.items():
        for k, seed in enumerate(seeds):
            cfg.seed = seed
            run_dir = out / f"{model}-seed{seed}"
            run_dir.mkdir(parents=True)
            write_json(run_dir / "config.json", {**cfg.to_dict(), "protocol": "text", "environment": {}})
            values = per_user[model][k]
            write_json(run_dir / "metrics.json", {
                "dataset": "hand", "model": model, "test": {"full": {m: float(values.mean()) for m in METRIC_NAMES}},
                "valid": {"full": {}}, "seconds": {"total": 10.0 * (k + 1)}})
            np.savez(run_dir / "per_user.npz", **{f"test/full/{m}": values for m in METRIC_NAMES})


def hand_configs(models):
    configs = {m: default_config(m, data={"dataset": "lastfm"}) for m in models}
    configs["s3rec"].init = "given-pretrain.pt"  # no pre-training: the runs exist already
    return configs


@pytest.mark.parametrize("shift, significant, mark, tex_mark", [
    (0.05, True, "\\*", "$^{*}$"), (-0.05, True, "†", "$^{\\dagger}$"), (0.0, False, "", "")])
def test_significance_marker_comes_from_paired_per_user_values(tmp_path, shift, significant, mark, tex_mark):
    rng = np.random.default_rng(0)
    n = 80
    strong = rng.uniform(0.2, 0.6, n)
    noise = np.repeat(rng.uniform(0.01, 0.03, n // 2), 2) * np.tile([1.0, -1.0], n // 2)  # mean exactly 0
    per_user = {
        "pop": [np.full(n, 0.01), np.full(n, 0.01)],  # a weak baseline: S3-Rec beats it in every user
        "sasrec": [strong - 0.01, strong + 0.01],  # the best baseline; seed average = strong
        "s3rec": [strong + shift + noise - 0.002, strong + shift + noise + 0.002],  # seed average = strong + shift + noise
    }
    configs = hand_configs(per_user)
    fake_runs(tmp_path, configs, per_user)
    table = compare(configs, SEEDS, tmp_path, log=lambda *a: None)
    row = next(r for r in table.rows if r.metric == "NDCG@10")
    assert row.best_baseline == "sasrec"
    ours, best = np.mean(per_user["s3rec"], axis=0), np.mean(per_user["sasrec"], axis=0)  # users averaged over seeds
    assert row.p_ttest == pytest.approx(stats.ttest_rel(ours, best).pvalue, rel=1e-9)
    assert row.p_wilcoxon == pytest.approx(stats.wilcoxon(ours - best).pvalue, rel=1e-9)
    assert row.significant is significant and (row.p_ttest < 0.01) is significant
    assert row.improvement == pytest.approx(ours.mean() / best.mean() - 1)
    cells = md_rows((tmp_path / "comparison.md").read_text(), "full")["NDCG@10"]
    body = cells[2][:len(cells[2]) - len(mark)]  # S3-Rec's column: a star for a gain, a dagger for a loss, else nothing
    assert cells[2].endswith(mark) and not body.endswith(("\\*", "†"))
    tex_row = next(line for line in (tmp_path / "comparison.tex").read_text().splitlines() if line.startswith("NDCG@10 &"))
    tex_cell = tex_row.split(" & ")[3]
    assert tex_cell.endswith(tex_mark) and tex_cell.count("$^") == int(significant)
    if not significant:  # the weak baseline would have given p < 0.01: the test pairs the best one
        assert paired_tests(per_user["s3rec"][0], per_user["pop"][0])[0] < 0.01
    assert table.seconds["pop"] == (15.0, pytest.approx(np.std([10.0, 20.0], ddof=1)))


def test_paired_tests_edge_cases():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    assert paired_tests(a, a) == (1.0, 1.0)
    p_t, p_w = paired_tests(a + 0.1, a)  # constant shift: t undefined (no variance), the difference certain
    assert p_t == 0.0 and 0 < p_w <= 1
    assert all(np.isnan(paired_tests(a[:1], a[:1] + 1)))


def test_a_run_directory_made_with_other_options_is_not_reused(tmp_path):
    per_user = {m: [np.full(10, 0.1), np.full(10, 0.2)] for m in ("sasrec", "s3rec")}
    configs = hand_configs(per_user)
    fake_runs(tmp_path, configs, per_user)
    configs["sasrec"].finetune.lr = 0.01
    with pytest.raises(S3RecError, match=r"sasrec-seed1/config.json: made with finetune.lr=0.001, this call asks for 0.01"):
        compare(configs, SEEDS, tmp_path, log=lambda *a: None)


@pytest.mark.parametrize("command", ["compare", "reproduce", "study", "experiment ablation"])
@pytest.mark.parametrize("seeds, message", [("1,x", "--seeds takes comma-separated integers, got '1,x'"),
                                            ("1,1", "--seeds needs at least one seed and no repeats, got '1,1'"),
                                            (",", "--seeds needs at least one seed")])
def test_every_command_with_seeds_checks_them_in_one_line(tmp_path, capsys, command, seeds, message):
    """A repeated seed would report a spread of one run; a non-integer was a traceback in reproduce and study."""
    assert main([*command.split(), "--dataset", "lastfm", "--seeds", seeds, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s3rec: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_bad_seeds_and_models_are_one_line_errors(tmp_path, capsys):
    assert main(["compare", "--dataset", "lastfm", "--seeds", "1,x", "--out", str(tmp_path)]) == 2
    assert "--seeds takes comma-separated integers, got '1,x'" in capsys.readouterr().err
    assert main(["compare", "--dataset", "lastfm", "--models", "pop,nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown model 'nosuch'" in capsys.readouterr().err
    assert main(["compare", "--dataset", "lastfm", "--models", "hgn,pop", "--loss", "bce", "--out", str(tmp_path)]) == 2
    assert "not available for hgn" in capsys.readouterr().err


def test_a_missing_init_checkpoint_fails_before_any_model_runs(tmp_path, capsys):
    path = save_s3rec_format(make_synthetic(n_users=40, n_items=60, n_attributes=12, n_topics=6, seed=4), tmp_path, "syn")
    out = tmp_path / "cmp"
    assert main(["compare", "--data", str(path), "--models", "pop,s3rec", "--seeds", "1", "--out", str(out),
                 "--init", str(tmp_path / "none.pt"), *TINY]) == 2
    assert capsys.readouterr().err.strip() == ("s3rec: error: --pretrain-epochs sets the pre-training, and this run "
                                               "has none: S3-Rec fine-tunes from --init")  # once ignored
    assert main(["compare", "--data", str(path), "--models", "pop,s3rec", "--seeds", "1", "--out", str(out),
                 "--init", str(tmp_path / "none.pt"), *without_pretraining(TINY)]) == 2
    assert capsys.readouterr().err.strip() == f"s3rec: error: {tmp_path / 'none.pt'}: checkpoint not found"
    assert not out.exists()  # PopRec did not run first


def test_runs_made_with_other_options_are_found_before_the_pretraining_grows(tmp_path, capsys):
    path = save_s3rec_format(make_synthetic(n_users=40, n_items=60, n_attributes=12, n_topics=6, seed=4), tmp_path, "syn")
    argv = ["compare", "--data", str(path), "--models", "s3rec", "--seeds", "1", "--out", str(tmp_path / "cmp"), *TINY]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--pretrain-epochs", "2"]) == 2  # the finished run fine-tuned from epoch 1
    assert "made with init=" in capsys.readouterr().err
    assert not (tmp_path / "cmp" / "pretrain" / "pretrain-epoch2.pt").exists()  # once pre-trained first, then failed


def test_report_reads_the_finished_runs_only_and_trains_nothing(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    per_user = {m: [rng.uniform(0, 0.5, 40), rng.uniform(0, 0.5, 40)] for m in ("pop", "sasrec", "s3rec")}
    configs = hand_configs(per_user)
    fake_runs(tmp_path, configs, per_user)
    for d in ("sasrec-seed2",):  # an unfinished run: config and checkpoint, no metrics yet
        (tmp_path / d / "metrics.json").unlink()
    configs["gru4rec"] = default_config("gru4rec", data={"dataset": "lastfm"})  # not started at all

    def no_training(*a, **k):
        raise AssertionError("a report trained")

    monkeypatch.setattr(s3rec.runs, "run", no_training)
    monkeypatch.setattr(s3rec.runs, "pretrain", no_training)
    table = compare(configs, SEEDS, tmp_path, log=lambda *a: None, report_only=True)
    assert table.models == ["pop", "sasrec", "s3rec"]
    assert table.missing_seeds() == {"sasrec": 1}
    row = next(r for r in table.rows if r.metric == "NDCG@10")
    assert row.mean["sasrec"] == pytest.approx(per_user["sasrec"][0].mean()) and row.std["sasrec"] == 0.0
    assert row.mean["s3rec"] == pytest.approx(np.mean([v.mean() for v in per_user["s3rec"]]))
    best = max(("pop", "sasrec"), key=lambda m: row.mean[m])
    their = per_user[best][0] if best == "sasrec" else np.mean(per_user["pop"], axis=0)
    assert row.p_ttest == pytest.approx(stats.ttest_rel(np.mean(per_user["s3rec"], axis=0), their).pvalue, rel=1e-9)
    md = (tmp_path / "comparison.md").read_text()
    assert "Unfinished (a report of the runs finished so far): SASRec 1 of 2 seeds." in md
    ndcg_cells = next(line for line in md.splitlines() if line.startswith("| NDCG@10 |")).split(" | ")
    assert "±" in ndcg_cells[1] and "±" not in ndcg_cells[2]  # SASRec's one seed has no std to show
    assert "GRU4Rec" not in md
    assert "Unfinished: SASRec 1 of 2 seeds." in (tmp_path / "comparison.tex").read_text()
    seeds_row = next(r for r in csv.DictReader((tmp_path / "comparison.csv").open()) if r["metric"] == "seeds")
    assert (seeds_row["pop_mean"], seeds_row["sasrec_mean"], seeds_row["s3rec_mean"]) == ("2", "1", "2")
    with pytest.raises(S3RecError, match="no finished run of these models and seeds to report"):
        compare({"gru4rec": configs["gru4rec"]}, SEEDS, tmp_path / "empty", log=lambda *a: None, report_only=True)


def test_model_at_recipe_columns_run_under_their_recipe_and_the_last_s3rec_column_is_ours(tmp_path, capsys):
    path = save_s3rec_format(make_synthetic(n_users=60, n_items=80, avg_len=8, n_attributes=12, n_topics=6, seed=5), tmp_path, "syn")
    out = tmp_path / "cmp"
    columns = ["sasrec", "s3rec", "sasrec@best", "s3rec@best"]
    assert main(["compare", "--data", str(path), "--models", ",".join(columns), "--seeds", "1", "--out", str(out),
                 "--protocol", "full", *TINY]) == 0
    md = capsys.readouterr().out
    configs = {c: json.loads((out / f"{c.replace('@', '-')}-seed1" / "config.json").read_text()) for c in columns}
    assert [configs[c]["recipe"] for c in columns] == ["paper", "paper", "best", "best"]
    assert [configs[c]["finetune"]["loss"] for c in columns] == ["bce", "bce", "ce", "ce"]
    # each S3-Rec column fine-tunes its own recipe's pre-training
    assert configs["s3rec"]["init"].endswith("pretrain/pretrain-epoch1.pt")
    assert configs["s3rec@best"]["init"].endswith("pretrain-best/pretrain-epoch1.pt")
    pre_best = json.loads((out / "pretrain-best" / "config.json").read_text())  # beside its checkpoints
    assert pre_best["pretrain"]["objectives"]["mip_form"] == "softmax"
    head = next(line for line in md.splitlines() if line.startswith("| metric"))
    assert head == "| metric | SASRec | S3-Rec | SASRec (best) | S3-Rec (best) | Improv. |"
    row = next(r for r in csv.DictReader((out / "comparison.csv").open()) if r["protocol"] == "full" and r["metric"] == "NDCG@10")
    best = max(("sasrec", "sasrec@best"), key=lambda c: float(row[f"{c}_mean"]))  # S3-Rec columns are not baselines
    assert row["best_baseline"] == best
    if float(row[f"{best}_mean"]) > 0:
        assert float(row["improvement"]) == pytest.approx(float(row["s3rec@best_mean"]) / float(row[f"{best}_mean"]) - 1)
    p_t, _ = paired_tests(np.load(out / "s3rec-best-seed1" / "per_user.npz")["test/full/NDCG@10"],
                          np.load(out / f"{best.replace('@', '-')}-seed1" / "per_user.npz")["test/full/NDCG@10"])
    assert row["p_ttest"] == repr(p_t)
    pre_row = next(r for r in csv.DictReader((out / "comparison.csv").open()) if r["metric"] == "pretrain_seconds")
    assert float(pre_row["s3rec_mean"]) > 0 and float(pre_row["s3rec@best_mean"]) > 0 and pre_row["sasrec_mean"] == ""


def test_bad_model_at_recipe_columns_are_one_line_errors(tmp_path, capsys):
    assert main(["compare", "--dataset", "lastfm", "--models", "pop,s3rec@nosuch", "--out", str(tmp_path)]) == 2
    assert "'s3rec@nosuch' is not MODEL or MODEL@RECIPE (recipes: paper, best, fast)" in capsys.readouterr().err
    assert main(["compare", "--dataset", "lastfm", "--models", "pop@best", "--out", str(tmp_path)]) == 2
    assert "recipe 'best' is defined for s3rec, sasrec, not 'pop'" in capsys.readouterr().err
    assert main(["compare", "--dataset", "lastfm", "--models", "sasrec,sasrec@paper", "--out", str(tmp_path)]) == 2
    assert "--models: sasrec and sasrec@paper are the same configuration" in capsys.readouterr().err
    configs = hand_configs(["s3rec"])
    configs["s3rec@best"] = copy.deepcopy(configs["s3rec"])
    with pytest.raises(S3RecError, match="--init names one pre-trained checkpoint but there are 2 S3-Rec columns"):
        compare(configs, SEEDS, tmp_path / "x", log=lambda *a: None)
    assert not (tmp_path / "x").exists()


def test_jobs_do_the_missing_runs_first_with_the_table_of_one_job(tmp_path, capsys, one_thread):
    from s3rec.compare import missing_jobs

    path = save_s3rec_format(make_synthetic(n_users=60, n_items=50, avg_len=8, n_attributes=8, n_topics=4, seed=3),
                             tmp_path, "syn")
    base = ["compare", "--data", str(path), "--models", "pop,s3rec", "--seeds", "1", *TINY]
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "pop-seed1").symlink_to(tmp_path / "one" / "pop-seed1")  # finished: not a job
    from s3rec.cli import make_parser
    from s3rec.cli.options import build_config
    args = make_parser().parse_args([*base, "--out", str(tmp_path / "two")])
    configs = {m: build_config(args, m) for m in ("pop", "s3rec")}
    jobs = missing_jobs(configs, [1], tmp_path / "two")
    assert [(j.kind, j.name, j.after) for j in jobs] == [("pretrain", "pretrain", None),
                                                         ("run", "s3rec-seed1", tmp_path / "two" / "pretrain")]
    assert main([*base, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    strip = lambda p: [r for r in csv.DictReader(p.open()) if "seconds" not in r["metric"]]  # wall-clock differs
    assert strip(tmp_path / "one" / "comparison.csv") == strip(tmp_path / "two" / "comparison.csv")
    assert not missing_jobs(configs, [1], tmp_path / "two")
    assert main([*base, "--out", str(tmp_path / "two"), "--jobs", "0"]) == 2
