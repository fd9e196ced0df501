"""The config schema: every setting of an experiment declared once, with its default, type, check and help.

``minidl.experiment.config`` builds ``DEFAULTS`` and the checks of config files from it; ``minidl.cli.options``
builds the command-line flags from it (``Setting.flag``, ``Setting.parse`` names the flag's value parser).
A dotted key (``data.n_train``) is a key of a section (``[data]`` in TOML). The component sections
(``loss``, ``optimizer``, ``scheduler``) are open: any constructor argument is a key there, checked against
the constructor (``components.py``); the schema declares only their name and the arguments with a flag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minidl.checks import is_int, is_number
from minidl.device import DTYPES, is_device_name
from minidl.train.early_stopping import MONITORS

NO_DEFAULT = object()  # a flag without a minidl default: the component's own applies
SEED_HIDDEN = "25:relu,25:tanh,25:relu"
TASKS = ("auto", "classification", "regression")
BALANCED = "balanced"  # class_weight: n_samples / (n_classes * count) on the training split, as scikit-learn


@dataclass(frozen=True)
class Setting:
    """One setting: ``key`` (dotted), ``default``, ``check`` + ``expected`` (the message's words), ``help``.

    ``parse`` names the flag's value parser (``minidl.cli.options.PARSERS``; None: the text itself);
    ``action`` "store_false" makes the flag ``--no-NAME``, "store_true" a switch ``--NAME``; ``flag`` None:
    no flag; ``group`` is the flag's help section.
    """

    key: str
    default: Any
    check: Callable[[Any], bool] | None
    expected: str
    help: str
    parse: str | None = None
    flag: str | None = ""  # "": --key-with-dashes
    action: str | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    group: str = "model and training"

    @property
    def flag_name(self) -> str | None:
        if self.flag is None:
            return None
        name = self.flag or self.key.rpartition(".")[2].replace("_", "-")
        return ("--no-" if self.action == "store_false" else "--") + name

    @property
    def dest(self) -> str:
        """The argparse destination: the flag's name with underscores."""
        return (self.flag or self.key.rpartition(".")[2]).replace("-", "_")


def _at_least_1(v: Any) -> bool:
    return is_int(v) and v >= 1


def _fraction(v: Any) -> bool:
    return is_number(v) and 0 <= v < 1


def is_class_weight(v: Any) -> bool:
    """The string balanced, or one weight >= 0 per class (at least two, not all 0)."""
    if v == BALANCED:
        return True
    return isinstance(v, list) and len(v) >= 2 and all(is_number(w) and w >= 0 for w in v) and any(w > 0 for w in v)


_COUNT, _FRACTION, _BOOL = "an integer >= 1", "a number in [0, 1)", "true or false"
_DATA, _OFF = "data", "store_false"
SETTINGS: tuple[Setting, ...] = (
    Setting("seed", 0, is_int, "an integer", "seed for data, initial weights and batch order (default {default})",
            parse="int"),
    Setting("epochs", 50, _at_least_1, _COUNT, "(default {default})", parse="positive_int"),
    Setting("batch_size", 1, _at_least_1, _COUNT, "(default {default})", parse="positive_int"),
    # the seed experiment is tiny: the CPU, unless --device says otherwise ("auto" picks a GPU)
    Setting("device", "cpu", is_device_name, "auto, cpu, cuda, cuda:N or mps",
            "where to compute; auto picks cuda, then mps, then cpu (default {default})", parse="device_name",
            metavar="{auto,cpu,cuda,cuda:N,mps}"),
    Setting("dtype", "float32", lambda v: v in DTYPES, "float32 or float64",
            "floating-point type of data, weights and optimizer state (default {default})", choices=tuple(DTYPES)),
    # processes on this machine (minidl train --nproc); batch_size stays the global batch size
    Setting("nproc", 1, _at_least_1, _COUNT, "data-parallel processes on this machine, started through torchrun "
            "on 127.0.0.1 (default {default})", parse="positive_int", metavar="N", group="train"),
    # "by task": the run's loss, optimizer and sizes are the recipe's (experiment/recipe.py); no flag
    Setting("recipe", NO_DEFAULT, lambda v: v == "by task", '"by task"', "", flag=None),
    # Trainer(compile=True), minidl.train.compiled: recorded in config.json, so that a resume takes the same path
    Setting("compile", False, lambda v: isinstance(v, bool), _BOOL,
            "train whole epochs as one compiled loop (torch.compile, inductor; CPU; plain SGD): the same model within "
            "float rounding, about 3x faster per epoch on small networks after 6-16 s of compilation (cached on disk): "
            "for long runs; eager, with one line on stderr, where the step cannot be captured", action="store_true",
            group="train"),
    # early stopping (minidl.train.EarlyStopping): no key in config.json unless asked for
    Setting("early_stopping", NO_DEFAULT, lambda v: is_int(v) and v >= 0, "an integer >= 0 (epochs of patience)",
            "stop when --monitor has not improved for PATIENCE epochs, and keep the best epoch's weights "
            "(default: off)", parse="int", metavar="PATIENCE", group="train"),
    Setting("monitor", NO_DEFAULT, lambda v: v in MONITORS, "one of " + ", ".join(MONITORS),
            "what --early-stopping watches (default val_loss)", choices=MONITORS, group="train"),
    Setting("min_delta", NO_DEFAULT, lambda v: is_number(v) and v >= 0, "a number >= 0",
            "the least change of --monitor that counts as an improvement (default 0)", parse="non_negative_float",
            group="train"),
    Setting("restore_best_weights", NO_DEFAULT, lambda v: isinstance(v, bool), _BOOL,
            "with --early-stopping, keep the last epoch's weights instead of the best one's", action=_OFF,
            group="train"),
    Setting("data.dataset", "disk", lambda v: isinstance(v, str) and v != "", "a data set name or a path to a .csv "
            "file", "built-in data set ({datasets}) or a CSV file (default {default})", metavar="NAME|PATH.csv",
            group=_DATA),
    Setting("data.n_train", 1000, _at_least_1, _COUNT, "generated training points (default {default})",
            parse="positive_int", group=_DATA),
    Setting("data.n_test", 1000, _at_least_1, _COUNT, "generated test points (default {default})",
            parse="positive_int", group=_DATA),
    Setting("data.noise", None, lambda v: v is None or (is_number(v) and v >= 0), "a number >= 0",
            "generator noise (default: the generator's own)", parse="non_negative_float", group=_DATA),
    Setting("data.val_fraction", 0.1, _fraction, _FRACTION, "validation share: of a file's rows, or extra "
            "generated points per training point (default {default})", parse="fraction", group=_DATA),
    Setting("data.test_fraction", 0.2, _fraction, _FRACTION, "test share of a file's rows, for CSV and digits "
            "(default {default})", parse="fraction", group=_DATA),
    Setting("data.target", None, lambda v: v is None or isinstance(v, str) or is_int(v), "a column name or index",
            "CSV target column: name, or index with --no-header (default: the last)", metavar="COLUMN",
            group=_DATA),
    Setting("data.header", True, lambda v: isinstance(v, bool), _BOOL, "the CSV file has no header row",
            action=_OFF, group=_DATA),
    Setting("data.delimiter", None, lambda v: v is None or (isinstance(v, str) and len(v) == 1 and v not in '"\r\n'),
            "one character", "CSV column separator, e.g. ';' or '\\t' (default: detected among , ; tab |)",
            parse="delimiter", metavar="CHAR", group=_DATA),  # None: detected (csv.Sniffer)
    Setting("data.index_col", False, lambda v: isinstance(v, bool), _BOOL,
            "the CSV file's first column is a row index (as pandas writes): skip it", action="store_true",
            group=_DATA),
    Setting("data.task", "auto", lambda v: v in TASKS, "auto, classification or regression",
            "CSV target kind (default auto: integer-valued with <= 20 values, or text, is classification)",
            choices=TASKS, group=_DATA),
    Setting("data.standardize", True, lambda v: isinstance(v, bool), _BOOL,
            "feed raw features (default: standardise with the training split's mean and std)", action=_OFF,
            group=_DATA),
    Setting("data.standardize_target", True, lambda v: isinstance(v, bool), _BOOL,
            "train regression on the raw targets (default: on (y - mean) / std of the training split; "
            "predictions and metrics are always in the data's units)", action=_OFF, group=_DATA),
    Setting("model.hidden", SEED_HIDDEN,
            lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v)),
            'a spec such as "25:relu,25:tanh" or a list of "SIZE:ACTIVATION" strings',
            "hidden layers as SIZE:ACTIVATION,... (default {default}; '' for none); add :bn for a BatchNorm1d "
            "where written (64:relu:bn after the activation, 64:bn:relu before it)", metavar="SPEC"),
    Setting("model.dropout", 0.0, _fraction, "a dropout probability in [0, 1)",
            "dropout probability after each hidden layer, in [0, 1) (default 0: no Dropout layers)",
            parse="fraction", metavar="P"),
    # class weights of the loss (experiment/class_weight.py): no key in config.json unless asked for
    Setting("class_weight", NO_DEFAULT, is_class_weight, '"balanced" or a list of weights >= 0, one per class',
            "weigh each class in the loss: balanced (n_samples / (n_classes * count) on the training split) or "
            "one weight per class in label order, e.g. 1,2,1 (cross-entropy weight; bce-logits gets pos_weight "
            "n_neg/n_pos; default: none)", parse="class_weight", metavar="balanced|W,W,..."),
    # the component sections: their names, and the arguments with a flag of their own
    Setting("loss.name", "mse", None, "", "loss (default {default})", flag="loss", choices=("@loss",)),
    Setting("optimizer.name", "sgd", None, "", "optimizer (default {default})", flag="optim",
            choices=("@optimizer",)),
    # lr 0.01 for every optimizer; other defaults are its own
    Setting("optimizer.lr", 0.01, None, "", "learning rate (> 0; default {default})", parse="positive_float"),
    Setting("optimizer.momentum", NO_DEFAULT, None, "", "momentum, for optimizers that take one "
            "(default: the optimizer's)", parse="non_negative_float"),
    Setting("optimizer.weight_decay", NO_DEFAULT, None, "", "weight decay, for optimizers that take one "
            "(default: the optimizer's)", parse="non_negative_float"),
    Setting("scheduler.name", "none", None, "", "learning-rate scheduler, stepped once per epoch (default none)",
            flag="scheduler", choices=("@scheduler", "none")),
)  # fmt: skip
COMPONENTS = ("loss", "optimizer", "scheduler")  # open sections: any constructor argument is a key


def defaults() -> dict[str, Any]:
    """The nested defaults table, in the order of ``SETTINGS``."""
    out: dict[str, Any] = {}
    for s in SETTINGS:
        if s.default is NO_DEFAULT:
            continue
        section, _, key = s.key.rpartition(".")
        (out.setdefault(section, {}) if section else out)[key] = s.default
    return out


def checks() -> dict[str, tuple[Callable[[Any], bool], str]]:
    """Dotted key -> (test, what the message says is expected), for the closed sections."""
    return {s.key: (s.check, s.expected) for s in SETTINGS if s.check is not None}
