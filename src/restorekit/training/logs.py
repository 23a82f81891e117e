"""Keep Lightning's and MLflow's console chatter to what a user needs."""

from __future__ import annotations

import logging
import warnings


def quiet_lightning() -> None:
    """Hide Lightning's info banners/tips and known-harmless warnings; errors still show."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning", "pytorch_lightning", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        r".*LeafSpec.*",
        r".*module\(s\) in eval mode.*",
        r".*does not have many workers.*",
        r".*Checkpoint directory .* exists and is not empty.*",
        r".*litlogger.*",
        r".*The number of training batches .* is smaller than the logging interval.*",
        r".*the hooks will not be called on every batch.*",
        r".*`training_step` returned `None`.*",
        r".*GPU available.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)
