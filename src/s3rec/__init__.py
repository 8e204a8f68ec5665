"""s3rec: self-supervised sequential recommendation (S3-Rec, Zhou et al., CIKM 2020)."""

__version__ = "0.1.0"

from s3rec.config import EvalConfig, RunConfig, load_config  # noqa: E402
from s3rec.data.dataset import SequenceData  # noqa: E402
from s3rec.data.loading import DataConfig, load_data  # noqa: E402
from s3rec.data.splits import LeaveOneOut  # noqa: E402
from s3rec.data.tables import from_dataframes  # noqa: E402
from s3rec.errors import ConfigError, DataError, S3RecError  # noqa: E402
from s3rec.pipeline import evaluate_run, pretrain_run, run  # noqa: E402
from s3rec.recipes import apply_recipe  # noqa: E402
from s3rec.recommend import Recommender  # noqa: E402

__all__ = ["ConfigError", "DataConfig", "DataError", "EvalConfig", "LeaveOneOut", "Recommender", "RunConfig", "S3RecError",
           "SequenceData", "apply_recipe", "evaluate_run", "from_dataframes", "load_config", "load_data", "pretrain_run",
           "run", "__version__"]
