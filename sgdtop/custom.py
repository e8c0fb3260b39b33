"""Your own model and data under ``sgdtop run``: ``sgdtop run path/to/file.py:factory`` or
``sgdtop run package.module:factory``.

The contract (small on purpose): ``factory`` is a function taking no arguments, or one
argument ``seed: int`` (the run's seed; sgdtop also seeds torch's global RNG with it
before the call, so a model initialised inside is reproducible), that returns a
:class:`CustomTask`::

    from sgdtop.custom import CustomTask

    def factory(seed: int = 0) -> CustomTask:
        return CustomTask(model=MyNet(), train=train_set, test=test_set,
                          task="classification", num_outputs=10, name="my-data")

Everything else — optimizer settings (SGD with the profile's η, S, β, L2), measurement
schedule, probe set (a fixed ``probe_fraction`` of ``train``, drawn from the seed), TUI,
headless log, run store — is sgdtop's, as for the built-in models.

Every problem loading a factory is a :class:`CustomTaskError` whose message is one line
naming the file (or module) and what was expected.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from torch import Tensor, nn
from torch.utils.data import Dataset, Subset

from sgdtop.measure import LossFn

if TYPE_CHECKING:
    from sgdtop.data import TaskData

TASKS: Final[tuple[str, ...]] = ("classification", "regression")
_EXPECTED: Final[str] = "a function returning sgdtop.custom.CustomTask"


class CustomTaskError(ValueError):
    """A custom task spec that cannot be used; the message is one line naming the file or
    module and what was expected."""


@dataclass
class CustomTask:
    """What a factory returns: the model, the data and the loss.

    Attributes:
        model: the network, freshly initialised (sgdtop moves it to the run's device).
        train: the training set; ``train[i]`` is a pair (input tensor, target). sgdtop
            batches and shuffles it, and draws the probe set from it.
        test: the test set, same form; evaluated at the end of every epoch.
        loss_fn: ``loss_fn(outputs, targets)`` → the mean loss of a batch (a 0-d tensor).
            Default: cross-entropy for classification, mean squared error for regression.
            No L2 term: sgdtop adds weight decay in the optimizer and excludes it from H.
        task: ``"classification"`` (targets are class indices; accuracy is reported) or
            ``"regression"`` (accuracy is NaN).
        num_outputs: number of classes, or the output dimension for regression (shown
            only; None: not stated).
        name: the dataset's name, shown in ``sgdtop runs`` and the TUI header.
        train_eval: optional: the training set *without augmentation* (same examples in
            the same order as ``train``); the probe set is drawn from it. Default: ``train``.
    """

    model: nn.Module
    train: Dataset[Any]
    test: Dataset[Any]
    loss_fn: LossFn | None = None
    task: str = "classification"
    num_outputs: int | None = None
    name: str = "custom"
    train_eval: Dataset[Any] | None = None

    def resolved_loss(self) -> LossFn:
        """``loss_fn``, or the default for ``task`` when it is None."""
        if self.loss_fn is not None:
            return self.loss_fn
        return nn.CrossEntropyLoss() if self.task == "classification" else nn.MSELoss()


def is_custom_spec(model: str) -> bool:
    """Whether a profile's ``model`` names a custom factory (``file.py:f``, ``pkg.mod:f``)
    rather than a built-in model."""
    return ":" in model


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def split_spec(spec: str) -> tuple[str, str]:
    """``"path/to/file.py:factory"`` → (``"path/to/file.py"``, ``"factory"``)."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr.isidentifier():
        raise CustomTaskError(
            f"{spec!r}: expected path/to/file.py:factory or package.module:factory "
            "(the factory a Python identifier)")
    return where, attr


def _is_file_spec(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    """Let a factory file import the modules beside it, while it loads and runs."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)


def _import_file(path: Path, label: str) -> ModuleType:
    if not path.is_file():
        what = "a directory" if path.is_dir() else "no such file"
        raise CustomTaskError(f"{label}: {what} (expected a Python file defining "
                              f"{_EXPECTED})")
    mod_name = f"sgdtop_custom_{path.stem}_{abs(hash(str(path.resolve()))):x}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise CustomTaskError(f"{label}: cannot be imported as a Python module "
                              "(expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise CustomTaskError(f"{label}: importing it raised {_one_line(exc)}") from None
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise CustomTaskError(
                f"{name}: no such module (expected package.module:factory importable from "
                "here, or path/to/file.py:factory)") from None
        raise CustomTaskError(f"{name}: importing it raised {_one_line(exc)}") from None
    except Exception as exc:
        raise CustomTaskError(f"{name}: importing it raised {_one_line(exc)}") from None


def _call(factory: Callable[..., Any], seed: int, label: str) -> Any:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    kwargs: dict[str, Any] = {}
    if sig is not None:
        params = sig.parameters.values()
        takes_seed = "seed" in sig.parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        required = [p.name for p in params if p.default is inspect.Parameter.empty
                    and p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                       inspect.Parameter.VAR_KEYWORD)
                    and p.name != "seed"]
        if required:
            raise CustomTaskError(
                f"{label}: the factory takes argument(s) {', '.join(required)}; expected no "
                "arguments or only `seed: int`")
        if takes_seed:
            kwargs["seed"] = seed
    try:
        return factory(**kwargs)
    except Exception as exc:
        raise CustomTaskError(f"{label}() raised {_one_line(exc)}") from None


def _check_dataset(ds: Any, what: str, label: str) -> int:
    if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
        raise CustomTaskError(f"{label}: CustomTask.{what} is a {type(ds).__name__}, "
                              "expected a Dataset (with __len__ and __getitem__)")
    n = len(ds)
    if n == 0:
        raise CustomTaskError(f"{label}: CustomTask.{what} is empty (expected at least one "
                              "(input, target) example)")
    try:
        first = ds[0]
    except Exception as exc:
        raise CustomTaskError(f"{label}: CustomTask.{what}[0] raised {_one_line(exc)}"
                              ) from None
    if not (isinstance(first, tuple | list) and len(first) == 2
            and isinstance(first[0], Tensor)):
        raise CustomTaskError(f"{label}: CustomTask.{what}[0] is a {type(first).__name__}, "
                              "expected a pair (input tensor, target)")
    return n


def validate(task: Any, label: str) -> CustomTask:
    """Check what a factory returned; raise :class:`CustomTaskError` naming ``label``."""
    if not isinstance(task, CustomTask):
        raise CustomTaskError(
            f"{label}() returned a {type(task).__name__}, expected sgdtop.custom.CustomTask("
            "model=..., train=..., test=...)")
    if not isinstance(task.model, nn.Module):
        raise CustomTaskError(f"{label}: CustomTask.model is a {type(task.model).__name__}, "
                              "expected a torch.nn.Module")
    if not any(p.requires_grad for p in task.model.parameters()):
        raise CustomTaskError(f"{label}: CustomTask.model has no trainable parameters")
    if task.task not in TASKS:
        raise CustomTaskError(f"{label}: CustomTask.task is {task.task!r}, expected "
                              f"{' or '.join(map(repr, TASKS))}")
    if task.loss_fn is not None and not callable(task.loss_fn):
        raise CustomTaskError(f"{label}: CustomTask.loss_fn is not callable (expected "
                              "loss_fn(outputs, targets) -> mean loss)")
    if task.num_outputs is not None and (
            not isinstance(task.num_outputs, int) or isinstance(task.num_outputs, bool)
            or task.num_outputs < 1):
        raise CustomTaskError(f"{label}: CustomTask.num_outputs is {task.num_outputs!r}, "
                              "expected a positive integer or None")
    if not isinstance(task.name, str) or not task.name.strip():
        raise CustomTaskError(f"{label}: CustomTask.name must be a non-empty string")
    n_train = _check_dataset(task.train, "train", label)
    _check_dataset(task.test, "test", label)
    if task.train_eval is not None:
        n_eval = _check_dataset(task.train_eval, "train_eval", label)
        if n_eval != n_train:
            raise CustomTaskError(f"{label}: CustomTask.train_eval has {n_eval} examples, "
                                  f"train has {n_train} (expected the same examples)")
    return task


def load_factory(spec: str, *, seed: int) -> CustomTask:
    """Import the factory named by ``spec``, call it, and check what it returned.

    Args:
        spec: ``path/to/file.py:factory`` (relative to the working directory) or
            ``package.module:factory`` (importable).
        seed: passed as ``seed=`` when the factory accepts it.

    Raises:
        CustomTaskError: the file or module is missing or fails to import, it has no such
            attribute, the attribute is not callable or takes other arguments, the call
            raises, or it returns something other than a valid :class:`CustomTask` (wrong
            type, an empty or malformed dataset, no trainable parameters, ...).
    """
    where, attr = split_spec(spec)
    if _is_file_spec(where):
        path = Path(where).expanduser()
        ctx: contextlib.AbstractContextManager[None] = _on_sys_path(path.resolve().parent)
    else:
        path = None
        ctx = contextlib.nullcontext()
    label = f"{where}:{attr}"
    with ctx:
        module = _import_file(path, where) if path is not None else _import_module(where)
        if not hasattr(module, attr):
            found = sorted(n for n, v in vars(module).items()
                           if callable(v) and not n.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)
            hint = f"; it defines: {', '.join(found[:8])}" if found else ""
            raise CustomTaskError(f"{where}: no attribute {attr!r} (expected {_EXPECTED})"
                                  f"{hint}")
        factory = getattr(module, attr)
        if not callable(factory):
            raise CustomTaskError(f"{label} is a {type(factory).__name__}, not callable "
                                  f"(expected {_EXPECTED})")
        result = _call(factory, seed, label)
    return validate(result, label)


def task_data(task: CustomTask, *, probe_size: int, seed: int) -> TaskData:
    """The :class:`sgdtop.data.TaskData` of a custom task: its datasets, and a probe set of
    ``probe_size`` examples drawn from ``train_eval`` (or ``train``) with the run's seed
    (:func:`sgdtop.data.draw_probe_indices`)."""
    from sgdtop.data import TaskData, draw_probe_indices

    source = task.train_eval if task.train_eval is not None else task.train
    indices = draw_probe_indices(len(task.train), probe_size, seed)  # type: ignore[arg-type]
    return TaskData(name=task.name, task=task.task, train=task.train, test=task.test,
                    probe=Subset(source, list(indices)), probe_indices=indices,
                    num_outputs=task.num_outputs or 0, in_features=None)
