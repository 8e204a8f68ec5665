"""The paper's §5.3 analyses as commands (`s3rec experiment NAME`), one module each.

Each function takes a `Setup` (run options per model, seeds, output folder), runs or reuses the runs
it needs and writes <name>.csv, <name>.png and <name>.md into the output folder.
`run_experiment(partial(ablation, baseline=...), setup, jobs=N)` first does the missing runs N at a time.
"""

from s3rec.experiments.ablation import ablation
from s3rec.experiments.common import ExperimentResult, Setup
from s3rec.experiments.convergence import convergence
from s3rec.experiments.pretrain_epochs import pretrain_epochs
from s3rec.experiments.sparsity import sparsity
from s3rec.experiments.transfer import transfer
from s3rec.parallel import run_experiment

__all__ = ["ExperimentResult", "Setup", "ablation", "convergence", "pretrain_epochs", "run_experiment", "sparsity",
           "transfer"]
