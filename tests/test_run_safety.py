"""A run directory never mixes two runs, diverged training is an error, and OS errors are one line (CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3rec.cli import main
from s3rec.data.loading import DataConfig, check_data_flags
from s3rec.errors import S3RecError


def write_log(path: Path, users: int, prefix: str = "u") -> Path:
    """users x 8 interactions over 20 items, in time order."""
    rows = ["user_id,item_id,timestamp"]
    rows += [f"{prefix}{u},i{(u + 3 * t) % 20},{1000 + 10 * t + u}" for u in range(users) for t in range(8)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def sasrec(data: Path, out: Path, *extra: str) -> int:
    return main(["run", "--model", "sasrec", "--data", str(data), "--min-count", "1", "--set", "encoder.d=16",
                 "--epochs", "2", "--out", str(out), "--quiet", *extra])


def error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(err) == 1 and err[0].startswith("s3rec: error: "), err
    return err[0]


def test_diverged_fine_tuning_is_an_error_and_leaves_no_results_of_the_folder_s_earlier_run(tmp_path, capsys):
    data, out = write_log(tmp_path / "log.csv", 40), tmp_path / "run"
    assert sasrec(data, out) == 0
    assert (out / "metrics.json").is_file() and (out / "model.pt").is_file()
    capsys.readouterr()
    assert sasrec(data, out, "--set", "finetune.lr=1e6") == 2
    assert "fine-tuning diverged" in error_line(capsys)
    # config.json now describes the failed run: the earlier model and metrics must not outlive it
    assert not any((out / name).exists() for name in ("metrics.json", "model.pt", "summary.json", "per_user.npz"))
    assert json.loads((out / "config.json").read_text())["finetune"]["lr"] == 1e6


@pytest.mark.parametrize("value", ["nan", ".nan", "inf"])
def test_a_non_finite_number_is_a_bad_option(tmp_path, capsys, value):
    assert sasrec(write_log(tmp_path / "log.csv", 40), tmp_path / "run", "--set", f"finetune.lr={value}") == 2
    assert "finetune.lr must be a finite number" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_resume_on_other_data_is_an_error_that_rewrites_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert sasrec(write_log(tmp_path / "a.csv", 40), out) == 0
    config = (out / "config.json").read_text()
    capsys.readouterr()
    assert sasrec(write_log(tmp_path / "b.csv", 40, prefix="x"), out, "--resume") == 2
    assert "cannot resume" in error_line(capsys)
    assert (out / "config.json").read_text() == config and (out / "metrics.json").is_file()


def test_evaluate_refuses_data_that_are_not_the_run_s(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_log(Path("log.csv"), 40)
    assert sasrec(Path("log.csv"), tmp_path / "run") == 0  # config.json keeps the relative path
    elsewhere = tmp_path / "elsewhere"
    write_log(elsewhere / "log.csv", 60, prefix="x")
    monkeypatch.chdir(elsewhere)  # the relative path now names other data
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--quiet"]) == 2
    line = error_line(capsys)
    assert "cannot evaluate" in line and "relative data path" in line


def test_evaluate_with_weights_that_do_not_fit_the_config_is_one_line(tmp_path, capsys):
    data = write_log(tmp_path / "log.csv", 40)
    assert sasrec(data, tmp_path / "a") == 0 and sasrec(data, tmp_path / "b", "--set", "encoder.d=32") == 0
    (tmp_path / "a" / "model.pt").write_bytes((tmp_path / "b" / "model.pt").read_bytes())
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path / "a"), "--quiet"]) == 2
    assert "model.pt: does not fit" in error_line(capsys)


def test_fine_tuning_from_a_checkpoint_of_other_data_is_an_error(tmp_path, capsys):
    pt = tmp_path / "pt"
    assert main(["pretrain", "--data", str(write_log(tmp_path / "other.csv", 60, prefix="x")), "--min-count", "1",
                 "--set", "encoder.d=16", "--epochs", "1", "--out", str(pt), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["finetune", "--data", str(write_log(tmp_path / "log.csv", 40)), "--min-count", "1",
                 "--init", str(pt / "pretrain-epoch1.pt"), "--set", "encoder.d=16", "--epochs", "1",
                 "--out", str(tmp_path / "ft"), "--quiet"]) == 2
    assert "checkpoint was made on 60 users ('other') but the data set has 40" in error_line(capsys)


def test_s3rec_without_attributes_warns_that_aap_and_map_learn_nothing(tmp_path, capsys):
    assert main(["pretrain", "--data", str(write_log(tmp_path / "log.csv", 40)), "--min-count", "1",
                 "--set", "encoder.d=16", "--epochs", "1", "--out", str(tmp_path / "pt"), "--quiet"]) == 0
    assert "warning: log has no item attributes, so the AAP and MAP objectives learn nothing" in capsys.readouterr().err


def test_item_ids_that_occur_in_no_sequence_are_a_warning(tmp_path, capsys):
    gaps = tmp_path / "Shop.txt"  # S3-Rec format keeps its ids: 1..40 are items, 4 of them occur
    gaps.write_text("1 10 20 30 40\n2 20 30 40 10\n3 30 40 10 20\n", encoding="utf-8")
    assert main(["run", "--model", "pop", "--data", str(gaps), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "warning: Shop: 36 of the item ids 1..40 occur in no sequence" in capsys.readouterr().err
    assert main(["run", "--model", "pop", "--data", str(write_log(tmp_path / "log.csv", 10)), "--min-count", "1",
                 "--out", str(tmp_path / "run2"), "--quiet"]) == 0
    assert "occur in no sequence" not in capsys.readouterr().err  # a table's ids are remapped: no gaps


def test_os_errors_on_output_paths_are_one_line(tmp_path, capsys):
    data = write_log(tmp_path / "log.csv", 40)
    assert main(["run", "--model", "pop", "--data", str(data), "--min-count", "1", "--out", str(data), "--quiet"]) == 2
    assert error_line(capsys) == f"s3rec: error: {data}: is a file, not a folder"
    assert main(["run", "--model", "pop", "--data", str(data), "--min-count", "1", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    (tmp_path / "folder").mkdir()
    capsys.readouterr()
    assert main(["recommend", "--run", str(tmp_path / "r"), "--users", "u1", "--out", str(tmp_path / "folder")]) == 2
    assert "folder" in error_line(capsys)


def test_resume_with_other_options_is_an_error_that_rewrites_nothing(tmp_path, capsys):
    data, out = write_log(tmp_path / "log.csv", 40), tmp_path / "run"
    few = ("--set", "eval.n_negatives=5")  # 20 items: the sampled protocol needs fewer than 99 negatives
    assert sasrec(data, out, *few) == 0
    config = (out / "config.json").read_text()
    capsys.readouterr()
    assert sasrec(data, out, *few, "--resume", "--loss", "ce") == 2
    assert error_line(capsys) == (f"s3rec: error: {out / 'config.json'}: cannot resume: made with finetune.loss='bce', "
                                  "this call asks for 'ce'; resume with its options, or start afresh without --resume")
    assert (out / "config.json").read_text() == config
    # what may change on resume: how long it trains, and one more protocol evaluated at the end
    assert sasrec(data, out, *few, "--resume", "--epochs", "3", "--patience", "15", "--protocol", "both") == 0
    assert json.loads((out / "config.json").read_text())["finetune"]["epochs"] == 3
    capsys.readouterr()
    assert sasrec(data, out, *few, "--resume", "--epochs", "3", "--patience", "1", "--protocol", "both") == 2
    assert "cannot resume: made with finetune.patience=15, this call asks for 1 (it may grow, not shrink)" in error_line(capsys)
    assert sasrec(data, out, *few, "--resume", "--protocol", "sampled") == 2  # validation would pick by another protocol
    assert "cannot resume: made with eval.protocol='both', this call asks for 'sampled'" in error_line(capsys)


def test_pretraining_resumed_with_other_options_is_an_error(tmp_path, capsys):
    pt, data = tmp_path / "pt", str(write_log(tmp_path / "a.csv", 40))
    args = ["--data", data, "--min-count", "1", "--set", "encoder.d=16", "--out", str(pt), "--quiet"]
    assert main(["pretrain", *args, "--epochs", "1", "--set", "pretrain.samples=random-prefix"]) == 0
    capsys.readouterr()
    assert main(["pretrain", *args, "--epochs", "2", "--resume"]) == 2
    assert "last.pt: cannot resume: made with pretrain.samples='random-prefix', this call asks for 'prefixes'" in error_line(capsys)
    assert main(["pretrain", *args, "--epochs", "2", "--set", "pretrain.samples=random-prefix", "--resume"]) == 0
    assert (pt / "pretrain-epoch2.pt").is_file()


def test_a_run_s_config_json_repeats_the_run(tmp_path):
    data = write_log(tmp_path / "log.csv", 40)
    assert sasrec(data, tmp_path / "a", "--seed", "7", "--loss", "bpr") == 0
    assert main(["run", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in "ab")
    assert a["test"] == b["test"]
    config_a, config_b = (json.loads((tmp_path / r / "config.json").read_text()) for r in "ab")
    assert {k: v for k, v in config_a.items() if k != "environment"} == {k: v for k, v in config_b.items() if k != "environment"}


def test_config_file_errors_name_the_file_and_line(tmp_path, capsys):
    data = write_log(tmp_path / "log.csv", 40)
    bad_yaml = tmp_path / "indent.yaml"
    bad_yaml.write_text("finetune:\n  epochs: 1\n lr: 0.1\n")
    assert sasrec(data, tmp_path / "r1", "--config", str(bad_yaml)) == 2
    assert error_line(capsys).startswith(f"s3rec: error: {bad_yaml}:3: not valid YAML/JSON")
    bad_value = tmp_path / "value.yaml"
    bad_value.write_text("finetune:\n  patience: one\n")
    assert sasrec(data, tmp_path / "r2", "--config", str(bad_value)) == 2
    assert error_line(capsys) == (f"s3rec: error: {bad_value}: bad option: finetune.patience must be an integer, "
                                  "got 'one'")
    twice = tmp_path / "twice.yaml"  # PyYAML keeps the last value silently
    twice.write_text("finetune:\n  epochs: 1\n  lr: 0.1\n  epochs: 5\n")
    assert sasrec(data, tmp_path / "r3", "--config", str(twice)) == 2
    assert error_line(capsys) == f"s3rec: error: {twice}:4: not valid YAML/JSON (option 'epochs' given twice)"
    merged = tmp_path / "merged.yaml"  # a merge key's options may be overridden
    merged.write_text("base: &b {epochs: 1, patience: 1}\nfinetune:\n  <<: *b\n  epochs: 2\n")
    from s3rec.config import read_options_file
    assert read_options_file(merged)["finetune"] == {"epochs": 2, "patience": 1}


def test_pretraining_resumed_on_other_data_is_an_error_that_rewrites_nothing(tmp_path, capsys):
    pt = tmp_path / "pt"
    args = ["--min-count", "1", "--set", "encoder.d=16", "--epochs", "1", "--out", str(pt), "--quiet"]
    assert main(["pretrain", "--data", str(write_log(tmp_path / "a.csv", 40)), *args]) == 0
    config = (pt / "config.json").read_text()
    capsys.readouterr()
    assert main(["pretrain", "--data", str(write_log(tmp_path / "b.csv", 30)), *args, "--resume"]) == 2
    assert "last.pt: cannot resume: made on" in error_line(capsys)
    assert (pt / "config.json").read_text() == config


def test_data_options_that_would_be_ignored_are_errors(tmp_path, capsys):
    data = write_log(tmp_path / "log.csv", 40)
    assert main(["run", "--model", "pop", "--data", str(data), "--min-count", "1", "--attribute-cols", "brand",
                 "--out", str(tmp_path / "r1"), "--quiet"]) == 2
    assert "--attribute-cols names columns of --item-table FILE" in error_line(capsys)
    seqs = tmp_path / "Toy.txt"
    seqs.write_text("".join(f"{u} 1 2 3 4\n" for u in range(1, 6)))
    assert main(["run", "--model", "pop", "--data", str(seqs), "--item-table", str(data), "--out", str(tmp_path / "r2"),
                 "--quiet"]) == 2
    assert f"{seqs}: --item-table is for interaction tables" in error_line(capsys)
    assert main(["run", "--model", "pop", "--data", str(tmp_path), "--out", str(tmp_path / "r3"), "--quiet"]) == 2
    assert error_line(capsys) == f"s3rec: error: {tmp_path}: is a folder, not a file"
    assert not any((tmp_path / r).exists() for r in ("r1", "r2", "r3"))


def test_check_data_flags_refuses_attribute_cols_without_an_item_table(tmp_path):
    """A table's --attribute-cols name columns of --item-table: without one they would silently do nothing."""
    data = str(write_log(tmp_path / "log.csv", 3))
    with pytest.raises(S3RecError, match="^--attribute-cols names columns of --item-table FILE, which is not given$"):
        check_data_flags(DataConfig(path=data, attribute_cols="brand"), ["--attribute-cols"])
    check_data_flags(DataConfig(path=data, item_table=data, attribute_cols="brand"), ["--attribute-cols"])
    check_data_flags(DataConfig(path=data), [])  # the default columns, not given: nothing to refuse


@pytest.mark.parametrize("source, flags, reason", [
    ("Toy.txt", ["--min-count", "50"], "an S3-Rec Name.txt is read as it is"),
    ("Toy.txt", ["--user-col", "uid"], "an S3-Rec Name.txt is read as it is"),
    ("toy.inter", ["--time-col", "none"], "a RecBole .inter file has the fields user_id, item_id and timestamp"),
    ("toy.inter", ["--attribute-cols", "brand"], "every token/token_seq field of its .item file is an attribute"),
    ("lastfm", ["--item-col", "x", "--min-count", "3"], "the registry's files are read as published"),
])
def test_column_and_filter_flags_the_source_would_ignore_are_errors(tmp_path, capsys, source, flags, reason):
    (tmp_path / "Toy.txt").write_text("".join(f"{u} 1 2 3 4\n" for u in range(1, 6)))
    (tmp_path / "toy.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n"
                                        + "".join(f"u{u}\ti{t}\t{t}\n" for u in range(5) for t in range(4)))
    data = ["--dataset", source] if source == "lastfm" else ["--data", str(tmp_path / source)]
    assert main(["run", "--model", "pop", *data, *flags, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    line = error_line(capsys)
    assert f"{flags[0]}" in line and "would be ignored" in line and reason in line, line
    assert not (tmp_path / "run").exists()
    if source != "lastfm":  # the same source without the flags runs
        fits = ["--min-count", "1"] if source == "toy.inter" else []  # four items a user: no 5-core
        assert main(["run", "--model", "pop", *data, *fits, "--out", str(tmp_path / "ok"), "--quiet"]) == 0


def test_a_fresh_run_in_an_earlier_run_s_folder_keeps_none_of_its_logs_or_checkpoints(tmp_path):
    data, out = write_log(tmp_path / "log.csv", 40), tmp_path / "run"
    assert sasrec(data, out) == 0
    assert main(["run", "--model", "pop", "--data", str(data), "--min-count", "1", "--out", str(out), "--quiet"]) == 0
    assert not (out / "finetune_log.jsonl").exists()  # PopRec does not fine-tune: that log was SASRec's
    pt = tmp_path / "pt"
    base = ["pretrain", "--data", str(data), "--min-count", "1", "--set", "encoder.d=16", "--set", "pretrain.save_every=1",
            "--out", str(pt), "--quiet"]
    assert main([*base, "--epochs", "3"]) == 0
    assert main([*base, "--epochs", "1", "--seed", "7"]) == 0
    assert sorted(p.name for p in pt.glob("*.pt")) == ["last.pt", "pretrain-epoch1.pt"]  # not epochs 2 and 3 of seed 42
    assert [json.loads(line)["epoch"] for line in (pt / "pretrain_log.jsonl").read_text().splitlines()] == [1]


def test_resume_with_nothing_to_resume_says_it_starts_afresh(tmp_path, capsys):
    data = write_log(tmp_path / "log.csv", 40)
    assert sasrec(data, tmp_path / "run", "--set", "eval.n_negatives=5", "--resume") == 0
    assert f"warning: nothing to resume in {tmp_path / 'run'}: starting afresh" in capsys.readouterr().err
    assert sasrec(data, tmp_path / "run", "--set", "eval.n_negatives=5", "--resume") == 0  # a finished run: no warning
    assert "nothing to resume" not in capsys.readouterr().err
    args = ["pretrain", "--data", str(data), "--min-count", "1", "--set", "encoder.d=16", "--out", str(tmp_path / "pt"),
            "--quiet", "--epochs", "1", "--resume"]
    assert main(args) == 0
    assert f"warning: nothing to resume in {tmp_path / 'pt'}: starting afresh" in capsys.readouterr().err
