"""`--jobs N`: the missing pre-trainings and runs of a multi-run command in N worker processes.

Each Job is one pre-training or fine-tuning run and its folder; execute() runs them in a pool of fresh
processes, a run after the pre-training its init checkpoint comes from. reproduce, compare and study
list their jobs themselves (their missing_jobs). An experiment is first called in planning mode (Setup.plan is a
list): pretraining() and seed_runs() record what is missing instead of running it, and the experiment
stops at end_of_runs(); after the jobs it is called again as usual and, every run being finished,
reuses them and writes its CSV, PNG and summary. Each run has the seed and options it has under
`--jobs 1` (with fewer threads per run, floating-point sums may round differently).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, TypeVar

import torch

from s3rec.config import RunConfig
from s3rec.errors import S3RecError
from s3rec.runs import pretrained_checkpoint
from s3rec.same_options import check_pretrain_reusable, check_reusable

R = TypeVar("R")


@dataclass(frozen=True, eq=False)  # compared by identity: a RunConfig is not hashable
class Job:
    """One missing pre-training ("pretrain") or fine-tuning run ("run") and the folder it writes."""

    kind: str
    cfg: RunConfig
    folder: Path
    after: Path | None = None  # the pre-training folder whose checkpoint this run starts from

    @property
    def name(self) -> str:
        """The job's folder name."""
        return self.folder.name


def check_jobs(jobs: int) -> int:
    """`jobs`, or a one-line S3RecError when it is below 1."""
    if jobs < 1:
        raise S3RecError(f"--jobs takes a number >= 1, got {jobs}")
    return jobs


class JobList:
    """What a multi-run command still has to do; each folder's options are checked as it is added.

    A run waits for the pre-training whose checkpoint it starts from (cfg.init) when that pre-training
    is in the list; a folder added twice (a pre-training several runs share) is one job.
    """

    def __init__(self) -> None:
        self._jobs: dict[Path, Job] = {}

    def pretraining(self, cfg: RunConfig, folder: Path) -> None:
        """cfg's pre-training into `folder`, unless its last checkpoint is there."""
        check_pretrain_reusable(cfg, folder)
        if not pretrained_checkpoint(cfg, folder).exists():
            self._jobs.setdefault(folder, Job("pretrain", cfg, folder))

    def run(self, cfg: RunConfig, folder: Path) -> None:
        """cfg's fine-tuning run into `folder`, unless it is finished."""
        check_reusable(cfg, folder)
        if not (folder / "metrics.json").is_file():
            after = Path(cfg.init).parent if cfg.init else None
            self._jobs.setdefault(folder, Job("run", cfg, folder, after if after in self else None))

    def __iter__(self):
        return iter(self._jobs.values())

    def __contains__(self, folder: Path) -> bool:
        return folder in self._jobs

    def __len__(self) -> int:
        return len(self._jobs)


class PlanComplete(Exception):
    """Raised by end_of_runs() in planning mode: every job of the experiment is recorded."""


def run_experiment(experiment: Callable[..., R], setup, jobs: int = 1) -> R:
    """experiment(setup), with its missing pre-trainings and runs first done by `jobs` worker processes."""
    if jobs > 1:
        execute(plan(experiment, setup), jobs, setup.log)
    return experiment(setup)


def plan(experiment: Callable, setup) -> list[Job]:
    """The jobs experiment(setup) would run, in the order it would run them (nothing is run or written)."""
    planning = dataclasses.replace(setup, plan=JobList(), log=lambda *a, **k: None)
    try:
        experiment(planning)
    except PlanComplete:
        pass
    return list(planning.plan)


def execute(jobs: list[Job] | JobList, n_workers: int, log=print) -> None:
    """Run `jobs` in up to n_workers fresh processes, each run after its pre-training; stop all at the first error."""
    jobs = list(jobs)
    if not jobs:
        return
    threads = max(1, torch.get_num_threads() // n_workers)
    log(describe(jobs, n_workers, threads))
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch or thread state inherited
    pending, running, done = jobs, {}, set()
    try:
        while pending or running:
            for job in [j for j in pending if j.after is None or j.after in done][: n_workers - len(running)]:
                pending.remove(job)
                receive, send = spawn.Pipe(duplex=False)
                proc = spawn.Process(target=work, args=(job, threads, send), name=f"s3rec {job.name}")
                proc.start()
                send.close()
                running[job] = (proc, receive, time.perf_counter())
                log(f"started {job.name}")
            wait([proc.sentinel for proc, _, _ in running.values()])
            for job, (proc, receive, start) in list(running.items()):
                if proc.is_alive():
                    continue
                del running[job]
                error = (receive.recv() if receive.poll()
                         else f"{job.folder}: its worker process ended with exit code {proc.exitcode}")
                if error is not None:
                    raise S3RecError(error)
                done.add(job.folder)
                log(f"finished {job.name} ({time.perf_counter() - start:.0f} s)")
    finally:
        for proc, _, _ in running.values():  # after an error or Ctrl-C; their folders stay resumable
            proc.terminate()
        for proc, _, _ in running.values():
            proc.join()


def describe(jobs: list[Job], n_workers: int, threads: int) -> str:
    """The line execute() starts with, e.g. "1 pre-training and 4 runs to do, 2 at a time, 1 thread each"."""
    n_pre = sum(j.kind == "pretrain" for j in jobs)
    todo = [f"{n} {what}{'s' * (n != 1)}" for n, what in ((n_pre, "pre-training"), (len(jobs) - n_pre, "run")) if n]
    return (f"{' and '.join(todo)} to do, {min(n_workers, len(jobs))} at a time, "
            f"{threads} thread{'s' * (threads > 1)} each")


def work(job: Job, threads: int, report: Connection) -> None:
    """One job in a worker process: pre-train or run into job.folder (resuming); sends None, or the one-line error."""
    from s3rec.runs import pretrain_or_reuse, run_or_reuse

    torch.set_num_threads(threads)

    def log(*args, **kwargs) -> None:
        if args and str(args[0]).startswith("warning:"):
            print(f"{job.name}: {args[0]}", *args[1:], file=sys.stderr)
    try:
        if job.kind == "pretrain":
            pretrain_or_reuse(job.cfg, job.folder, log=log)
        else:
            run_or_reuse(job.cfg, job.folder, log=log)
    except S3RecError as e:
        report.send(str(e))
    except Exception as e:  # a bug or a resource limit: the traceback for the report, one line for the caller
        traceback.print_exc()
        report.send(f"{job.folder}: {type(e).__name__}: {e}")
    else:
        report.send(None)
