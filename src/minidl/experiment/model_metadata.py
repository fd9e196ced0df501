"""The ``minidl`` JSON in a saved model's safetensors header, read and checked before anything is built.

Every number in it is checked against the others and against what the file holds (the classes list, the
layer sizes), so that no crafted header can make ``evaluate`` or ``predict`` allocate without bound.
"""

from __future__ import annotations

import json
from typing import Any

from minidl.errors import CheckpointError
from minidl.limits import short_repr
from minidl.train.task import KINDS

FORMAT = "minidl.saved_model/1"


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_metadata(meta: dict[str, Any], source: str) -> None:
    """The metadata's sizes agree with each other and with the file: the task's ``num_classes`` with the
    classes list and the output width, ``feature_names`` with ``in_features``, and each value has its type.

    The weights themselves are counted against the layer sizes in ``SavedModel._build``; together no number in the
    file can make ``predict`` or ``evaluate`` allocate more than the file's own size suggests.
    """

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"model {source}: inconsistent metadata: {problem}")

    task = meta.get("task")
    if not isinstance(task, dict) or task.get("kind") not in KINDS or not is_count(task.get("num_classes")):
        raise fail(f"invalid task {short_repr(task)}")
    kind, num_classes = task["kind"], task["num_classes"]
    in_features, out_features = meta.get("in_features"), meta.get("out_features")
    if not (is_count(in_features) and in_features >= 1 and is_count(out_features) and out_features >= 1):
        raise fail(f"invalid layer sizes {short_repr(in_features)}, {short_repr(out_features)}")
    classes, names = meta.get("classes", []), meta.get("feature_names", [])
    if not isinstance(classes, list) or not isinstance(names, list):
        raise fail("classes and feature_names must be lists")
    if kind == "regression":
        if num_classes != 0 or classes:
            raise fail(f"a regression model has no classes, got num_classes {num_classes} and {len(classes)} label(s)")
    else:
        if num_classes != (2 if kind == "binary" else max(num_classes, 3)):
            raise fail(f"a {kind} task with num_classes {num_classes}")
        if out_features != num_classes and not (kind == "binary" and out_features == 1):
            raise fail(f"num_classes {num_classes} but the last layer has {out_features} output(s)")
        if classes and len(classes) != num_classes:
            raise fail(f"num_classes {num_classes} but the classes list holds {len(classes)} label(s)")
    if not all(isinstance(c, int | float | str) and not isinstance(c, bool) for c in classes):
        raise fail("class labels must be numbers or strings")
    if names and len(names) != in_features:
        raise fail(f"in_features {in_features} but {len(names)} feature name(s)")
    if not isinstance(meta.get("hidden"), str) or not isinstance(meta.get("dtype"), str):
        raise fail("hidden and dtype must be strings")
    dropout = meta.get("dropout", 0.0)
    if not isinstance(dropout, int | float) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        raise fail(f"dropout must be a number in [0, 1), got {short_repr(dropout)}")
    target = meta.get("target")
    if target is not None and not isinstance(target, str):
        raise fail(f"target must be a column name, got {short_repr(target)}")


def read_metadata(header: dict[str, str], source: str) -> dict[str, Any]:
    """The ``minidl`` JSON of a checked safetensors header."""
    try:
        meta = json.loads(header["minidl"])
    except (KeyError, ValueError, RecursionError):
        raise CheckpointError(
            f"model {source}: not a minidl model (no minidl metadata in its safetensors header)"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"model {source}: not a minidl model file of format {FORMAT}")
    return meta
