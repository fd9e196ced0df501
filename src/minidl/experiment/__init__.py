"""minidl.experiment: a run assembled from a config (what ``minidl train`` runs).

- ``config.py``: the defaults, TOML/JSON files, layering and resolution;
- ``components.py``: losses, optimizers and schedulers by name (the component registry);
- ``experiment.py``: ``Experiment(config)``: data, model, loss, optimizer, scheduler and trainer;
- ``run_dir.py``: the run folder and its logs; ``saved_model.py``: ``model.safetensors``;
- ``report.py``, ``run_summary.py``, ``model_summary.py``: metrics as text, summary.md, the layer table.
"""

from minidl.experiment.experiment import Experiment
from minidl.experiment.run_dir import RunDir, open_run
from minidl.experiment.saved_model import SavedModel

__all__ = ["Experiment", "RunDir", "SavedModel", "open_run"]
