"""s3rec.parallel.JobList: what a multi-run command still has to do, and what each job waits for."""

import pytest

from s3rec.config import RunConfig
from s3rec.errors import S3RecError
from s3rec.io import write_json
from s3rec.parallel import JobList, check_jobs, describe, execute


def config(init=None, seed=1) -> RunConfig:
    cfg = RunConfig(model="s3rec" if init else "sasrec", seed=seed, init=init)
    cfg.data.dataset, cfg.pretrain.epochs = "lastfm", 3
    return cfg


def test_a_run_waits_only_for_a_pretraining_that_is_listed(tmp_path):
    jobs = JobList()
    todo, done = tmp_path / "pretrain-a", tmp_path / "pretrain-b"
    done.mkdir()
    (done / "pretrain-epoch3.pt").write_bytes(b"")  # finished: not a job
    jobs.pretraining(config(), todo)
    jobs.pretraining(config(), done)
    jobs.pretraining(config(), todo)  # shared by two parts: one job
    jobs.run(config(init=str(todo / "pretrain-epoch3.pt")), tmp_path / "s3rec-a-seed1")
    jobs.run(config(init=str(done / "pretrain-epoch3.pt")), tmp_path / "s3rec-b-seed1")
    jobs.run(config(), tmp_path / "sasrec-seed1")
    (tmp_path / "sasrec-seed2").mkdir()
    write_json(tmp_path / "sasrec-seed2" / "metrics.json", {})  # finished: not a job
    jobs.run(config(seed=2), tmp_path / "sasrec-seed2")
    assert [(j.kind, j.name, j.after) for j in jobs] == [("pretrain", "pretrain-a", None),
                                                         ("run", "s3rec-a-seed1", todo),
                                                         ("run", "s3rec-b-seed1", None),
                                                         ("run", "sasrec-seed1", None)]
    assert len(jobs) == 4 and todo in jobs and done not in jobs
    assert describe(list(jobs), 2, 1) == "1 pre-training and 3 runs to do, 2 at a time, 1 thread each"
    assert describe(list(jobs)[1:2], 4, 2) == "1 run to do, 1 at a time, 2 threads each"
    execute([], 2)  # nothing to do: no process is started


def test_a_folder_made_with_other_options_is_an_error_when_listed(tmp_path):
    run_dir = tmp_path / "sasrec-seed1"
    run_dir.mkdir()
    other = config()
    other.finetune.lr = 0.5
    write_json(run_dir / "config.json", other.to_dict())
    with pytest.raises(S3RecError, match="finetune.lr"):
        JobList().run(config(), run_dir)
    with pytest.raises(S3RecError, match="--jobs takes a number >= 1"):
        check_jobs(0)
