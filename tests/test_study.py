"""`s3rec study` end to end on a tiny synthetic set: four systems, seeds, table, paired tests, reuse."""

import json
import shutil

import numpy as np
import pytest
from scipy import stats

from s3rec.config import RunConfig
from s3rec.data.s3rec_format import save_s3rec_format
from s3rec.data.synthetic import make_synthetic
from s3rec.errors import S3RecError
from s3rec.recipes import apply_recipe
from s3rec.evaluation.significance import paired_tests
from s3rec.study import METRICS, SYSTEMS, run_study, system_config


def tiny_config() -> RunConfig:
    cfg = RunConfig()
    cfg.encoder.d, cfg.encoder.max_len, cfg.encoder.n_layers = 16, 10, 1
    cfg.pretrain.epochs, cfg.finetune.epochs = 1, 2
    return cfg


def test_systems_differ_only_where_they_should():
    base = tiny_config()
    ce, best = system_config(base, "SASRec-CE", 1), system_config(base, "S3-Rec-best", 1)
    assert (ce.model, best.model) == ("sasrec", "s3rec")
    assert ce.finetune == best.finetune and ce.encoder == best.encoder  # only pre-training differs
    assert system_config(base, "SASRec-BCE", 1).finetune.loss == "bce"
    assert best.finetune.loss == "ce" and best.pretrain.objectives.mip_form == "softmax"
    with pytest.raises(ValueError, match="recipe 'best' is defined for"):
        apply_recipe(RunConfig(model="gru4rec"), "best")


def test_paired_tests_match_scipy_and_handle_identical_values():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.05 + 0.01 * rng.standard_normal(200)
    t_p, w_p = paired_tests(a, b)
    assert t_p == pytest.approx(stats.ttest_rel(a, b).pvalue) and t_p < 0.01
    assert w_p == pytest.approx(stats.wilcoxon(a, b).pvalue) and w_p < 0.01
    assert paired_tests(a, a) == (1.0, 1.0)


def test_study_runs_every_system_writes_outputs_and_reuses_runs(tmp_path):
    path = save_s3rec_format(make_synthetic(n_users=100, n_items=80, n_attributes=10, n_topics=5, seed=1), tmp_path, "syn")
    out = tmp_path / "study"
    logs = []
    results = run_study(tiny_config(), [str(path)], [1, 2], out, log=logs.append)
    assert [r.system for r in results] == list(SYSTEMS)
    for f in ("study.md", "study.csv", "study.json", "study.png"):
        assert (out / f).stat().st_size > 0
    summary = json.loads((out / "study.json").read_text())
    for row in summary["systems"]:
        runs = [json.loads((out / "syn" / f"{row['system']}-seed{s}" / "metrics.json").read_text()) for s in (1, 2)]
        values = [m["test"]["full"]["NDCG@10"] for m in runs]
        assert row["NDCG@10_mean"] == pytest.approx(np.mean(values))
        assert row["NDCG@10_std"] == pytest.approx(np.std(values, ddof=1))
    # both pre-trainings exist once, shared by the seeds; the best one uses the softmax MIP
    cfg2 = json.loads((out / "syn" / "S3-Rec-best-seed2" / "config.json").read_text())
    assert cfg2["init"].endswith("syn/pretrain-best/pretrain-epoch1.pt")
    assert cfg2["pretrain"]["objectives"]["mip_form"] == "softmax" and cfg2["finetune"]["samples"] == "sequence"
    verdict = {(c["with"], c["without"]): c for c in summary["pretraining"]}
    pair = verdict[("S3-Rec-best", "SASRec-CE")]
    a = np.mean([np.load(out / "syn" / f"S3-Rec-best-seed{s}" / "per_user.npz")["test/full/NDCG@10"] for s in (1, 2)], 0)
    b = np.mean([np.load(out / "syn" / f"SASRec-CE-seed{s}" / "per_user.npz")["test/full/NDCG@10"] for s in (1, 2)], 0)
    assert pair["mean_with"] == pytest.approx(a.mean()) and pair["p_ttest"] == pytest.approx(paired_tests(a, b)[0])
    assert "| S3-Rec-best |" in (out / "study.md").read_text()
    assert "published" not in (out / "study.md").read_text()  # no literature rows for an unknown data set
    stamp = (out / "syn" / "SASRec-CE-seed1" / "metrics.json").stat().st_mtime_ns
    # --report: a finished seed removed, the tables are made of what is there and nothing is trained
    shutil.rmtree(out / "syn" / "S3-Rec-BCE-seed2")
    partial = run_study(tiny_config(), [str(path)], [1, 2], out, log=logs.append, report_only=True)
    assert [len(r.metrics) for r in partial] == [2, 2, 1, 2] and not (out / "syn" / "S3-Rec-BCE-seed2").exists()
    assert "| S3-Rec-BCE | 1 |" in (out / "study.md").read_text()
    other = tiny_config()
    other.finetune.lr = 0.5
    with pytest.raises(S3RecError, match="finetune.lr"):  # a report never passes off other runs as these
        run_study(other, [str(path)], [1, 2], out, log=logs.append, report_only=True)
    with pytest.raises(S3RecError, match="no finished run"):
        run_study(tiny_config(), [str(path)], [1, 2], tmp_path / "empty", log=logs.append, report_only=True)
    run_study(tiny_config(), [str(path)], [1, 2], out, log=logs.append)  # everything reused
    assert (out / "syn" / "SASRec-CE-seed1" / "metrics.json").stat().st_mtime_ns == stamp


def test_recipe_best_from_the_command_line_and_file_precedence(tmp_path):

    from s3rec.cli import make_parser
    from s3rec.cli.options import build_config

    def cfg_of(*argv):
        return build_config(make_parser().parse_args(["run", "--dataset", "lastfm", *argv]))

    paper = cfg_of("--model", "sasrec")
    assert paper.recipe == "paper" and paper.finetune.loss == "bce" and paper.finetune.samples == "sequence"
    best = cfg_of("--model", "sasrec", "--recipe", "best")
    assert best.recipe == "best" and best.finetune.loss == "ce" and best.finetune.samples == "sequence"
    assert best.pretrain.objectives.mip_form == "softmax" and (paper.finetune.patience, best.finetune.patience) == (10, 20)
    assert cfg_of("--recipe", "best", "--patience", "10").finetune.patience == 10
    (tmp_path / "c.yaml").write_text("recipe: best\nfinetune:\n  samples: prefixes\n")
    filed = cfg_of("--config", str(tmp_path / "c.yaml"))  # the file's own values win over its recipe
    assert filed.recipe == "best" and filed.finetune.loss == "ce" and filed.finetune.samples == "prefixes"
    assert cfg_of("--recipe", "best", "--loss", "bce").finetune.loss == "bce"  # flags win over the recipe
    by_set = cfg_of("--model", "sasrec", "--set", "recipe=best")  # a recipe named by --set is applied, not only recorded
    assert (by_set.recipe, by_set.finetune.loss, by_set.finetune.patience) == ("best", "ce", 20)
    with pytest.raises(S3RecError, match="recipe 'best' is defined for s3rec, sasrec"):
        cfg_of("--model", "gru4rec", "--recipe", "best")
    fast = cfg_of("--recipe", "fast")  # best's losses after a short, bucketed pre-training
    assert (fast.finetune.loss, fast.pretrain.objectives.mip_form, fast.finetune.patience) == ("ce", "softmax", 20)
    assert fast.pretrain.epochs == 10 and fast.pretrain.bucket and not fast.finetune.bucket
    assert cfg_of("--recipe", "fast", "--pretrain-epochs", "20").pretrain.epochs == 20


def test_a_recipe_named_in_python_is_applied_or_refused(tmp_path):
    """RunConfig(recipe="best") alone would train the paper recipe under config.json's word "best"."""
    from s3rec.errors import ConfigError
    from s3rec.pipeline import run
    from s3rec.recipes import check_applied

    named = RunConfig(model="sasrec", recipe="best")
    with pytest.raises(ConfigError, match=r"recipe='best' names settings none of which is in effect .*"
                                          r"apply_recipe\(cfg, 'best'\)"):
        check_applied(named)
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, S3RecError)
    with pytest.raises(ConfigError, match="bad option: recipe='best'"):  # refused when the run starts
        run(named, out=tmp_path / "r", progress=False, log=lambda *a: None, echo=lambda *a: None)
    assert not (tmp_path / "r").exists()
    named.validate()  # a finished run's config.json saying so still reads (evaluate, load_config)
    applied = apply_recipe(RunConfig(model="sasrec"), "best")
    applied.finetune.patience = 10  # one setting changed after applying it is still that recipe, changed
    check_applied(applied)
    assert applied.finetune.loss == "ce"
    check_applied(apply_recipe(RunConfig(), "fast"))
    check_applied(RunConfig(recipe="paper"))


def test_study_command_line(tmp_path, capsys):
    from s3rec.cli import main

    path = save_s3rec_format(make_synthetic(n_users=60, n_items=50, n_attributes=8, n_topics=4, seed=2), tmp_path, "syn")
    argv = ["study", "--datasets", str(path), "--seeds", "1", "--systems", "SASRec-BCE,SASRec-CE", "--out",
            str(tmp_path / "st"), "--set", "encoder.d=16", "--set", "encoder.max_len=8", "--epochs", "1", "--quiet"]
    assert main(argv) == 0
    assert "| SASRec-CE |" in capsys.readouterr().out
    assert main([*argv[:-1], "--systems", "bogus", "--quiet"]) == 2
    assert main([*argv, "--recipe", "best"]) == 2  # a recipe would leak into the paper-recipe systems
    capsys.readouterr()
    for extra, flag in ((["--loss", "ce"], "--loss"), (["--set", "finetune.loss=ce"], "--set finetune.loss"),
                        (["--patience", "3"], "--patience")):  # SASRec-BCE trained with CE would be labelled BCE
        assert main([*argv, *extra]) == 2
        assert f"s3rec: error: {flag}: study's systems are defined by their recipes'" in capsys.readouterr().err
    assert main([*argv, "--protocol", "sampled"]) == 2  # once a KeyError after training every run
    assert "study's tables are of full ranking" in capsys.readouterr().err


def test_known_data_sets_show_the_published_figures():
    from s3rec.study import SystemRuns, format_markdown

    runs = [SystemRuns("beauty", "SASRec-CE", [], [{"test": {"full": {m: 0.05 for m in METRICS}}, "seconds": {"total": 1.0}}])]
    text = format_markdown(runs, [1])
    assert "| *paper's S3-Rec (published)* | | 0.0647 | 0.0327 |" in text
    assert "| *strongest public (published)* | | 0.1041 | 0.0614 |" in text
    assert "| SASRec-CE | 1 | 0.0500 |" in text  # one seed has no std: no "± 0.0000"


def test_jobs_list_each_pretraining_once_and_fill_in_what_is_missing(tmp_path, one_thread):
    from s3rec.study import missing_jobs

    path = save_s3rec_format(make_synthetic(n_users=60, n_items=50, n_attributes=8, n_topics=4, seed=1), tmp_path, "syn")
    out, systems = tmp_path / "study", ["SASRec-BCE", "S3-Rec-BCE"]
    jobs = missing_jobs(tiny_config(), [str(path)], [1, 2], out, systems)
    assert [(j.kind, j.name, j.after) for j in jobs] == [
        ("run", "SASRec-BCE-seed1", None), ("run", "SASRec-BCE-seed2", None),
        ("pretrain", "pretrain-paper", None), ("run", "S3-Rec-BCE-seed1", out / "syn" / "pretrain-paper"),
        ("run", "S3-Rec-BCE-seed2", out / "syn" / "pretrain-paper")]
    assert not out.exists()
    one = run_study(tiny_config(), [str(path)], [1, 2], tmp_path / "one", systems, log=lambda *a: None)
    two = run_study(tiny_config(), [str(path)], [1, 2], out, systems, log=lambda *a: None, jobs=2)
    assert [[m["test"] for m in r.metrics] for r in one] == [[m["test"] for m in r.metrics] for r in two]
    assert not missing_jobs(tiny_config(), [str(path)], [1, 2], out, systems)


def test_comparisons_give_the_relative_change_of_pre_training():
    from s3rec.study import PAIRS, comparisons

    class Runs:
        def __init__(self, system, values):
            self.dataset, self.system, self.values = "d", system, np.array(values)

        def per_user(self, metric):
            return self.values

    with_pt, without = PAIRS[0]
    row = comparisons([Runs(with_pt, [0.2, 0.4, 0.6]), Runs(without, [0.1, 0.2, 0.3])])[0]
    assert (row["with"], row["without"]) == (with_pt, without)
    assert row["change"] == pytest.approx(1.0) and row["mean_with"] == pytest.approx(0.4)
