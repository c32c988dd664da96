"""Where a run's metrics go besides metrics.jsonl (the source of truth): TensorBoard always, and MLflow and
Weights & Biases when `trackers` names them, each through its own client. Tags are grouped as those tools
group them (`train/loss`, `test/acc`, `knn/acc`) and logged at the global step (optimiser updates). A tracker's
run id is kept in RUN/trackers.json, so a resumed run continues the same tracker run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lowdata.errors import UsageError, shown

TRACKERS = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}  # name -> (module, pip extra)
GROUPS = ("train", "test", "val", "knn", "teacher", "pool")


def parse_trackers(text: str | None) -> list[str]:
    """The trackers a setting names (comma-separated), each checked and its client importable; one line if not."""
    import importlib.util

    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    for name in names:
        if name not in TRACKERS:
            raise UsageError(f"unknown tracker {shown(name)} in trackers; choose from {', '.join(TRACKERS)} "
                             "(TensorBoard is always written)")
        module, extra = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise UsageError(f"trackers={name} needs the {module} client: pip install -e '.[{extra}]'")
    return names


def tag(key: str) -> str:
    """`train_loss` -> `train/loss`; keys of no group go under `run/` (`images_per_second`, `lr`)."""
    group, _, rest = key.partition("_")
    return f"{group}/{rest}" if group in GROUPS and rest else f"run/{key}"


class Trackers:
    """TensorBoard, and the trackers named, behind one `log(scalars, step)`."""

    def __init__(self, run_dir: Path, names: list[str], config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        from lowdata.ledger import Ledger

        self.state_path = run_dir / "trackers.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        # folders of TensorBoard's and W&B's own files (new names each time): lowdata's, but never written by it
        for folder in ("tensorboard", *(["wandb"] if "wandb" in names else [])):
            Ledger(run_dir).add_folder(folder)
        self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
        self.mlflow = self.wandb = None
        if "mlflow" in names:
            import mlflow

            # MLflow's own tracking URI (MLFLOW_TRACKING_URI, else ./mlruns); a resume continues its run
            self.mlflow = mlflow.start_run(run_id=state.get("mlflow"), run_name=run_dir.name)
            if "mlflow" not in state:
                mlflow.log_params({key: str(value)[:500] for key, value in config.items()})
            state["mlflow"] = self.mlflow.info.run_id
        if "wandb" in names:
            import wandb

            # W&B's own settings (WANDB_PROJECT, WANDB_MODE=offline, ...); the run's files beside the run
            self.wandb = wandb.init(project=None, name=run_dir.name, dir=str(run_dir), config=config,
                                    id=state.get("wandb"), resume="allow")
            state["wandb"] = self.wandb.id
        if state:
            from lowdata.io import atomic_write_json

            atomic_write_json(self.state_path, state)

    def log(self, scalars: dict[str, float], step: int) -> None:
        tagged = {tag(key): value for key, value in scalars.items() if key not in ("epoch", "step")}
        for name, value in tagged.items():
            self.tensorboard.add_scalar(name, value, step)
        self.tensorboard.flush()
        if self.mlflow is not None:
            import mlflow

            # MLflow's metric names allow slashes; the epoch rides along as a metric of its own
            mlflow.log_metrics({**tagged, "run/epoch": scalars.get("epoch", 0)}, step=step)
        if self.wandb is not None:
            self.wandb.log({**tagged, "run/epoch": scalars.get("epoch", 0)}, step=step)

    def close(self) -> None:
        self.tensorboard.close()
        if self.mlflow is not None:
            import mlflow

            mlflow.end_run()
        if self.wandb is not None:
            self.wandb.finish()
