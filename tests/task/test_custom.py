"""Custom tasks (``sgdtop run file.py:factory``): loading factories, every bad input as one
clear line, and the two examples (``examples/small_cnn.py``, ``examples/monitor_loop.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from sgdtop.custom import CustomTask, CustomTaskError, is_custom_spec, load_factory, task_data
from sgdtop.schema import read_events
from sgdtop.store import EVENTS_FILE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


GOOD = """
import torch
from torch import nn
from torch.utils.data import TensorDataset
from sgdtop.custom import CustomTask

def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())

def factory(seed: int = 0):
    return CustomTask(model=nn.Linear(4, 2), train=data(40, seed), test=data(10, seed + 1),
                      task="classification", num_outputs=2, name="toy")

def no_args():
    return factory(7)

def regression():
    x = torch.randn(8, 3)
    ds = TensorDataset(x, x.sum(1, keepdim=True))
    return CustomTask(model=nn.Linear(3, 1), train=ds, test=ds, task="regression")
"""


def write(tmp_path: Path, body: str, name: str = "task.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(GOOD + body))
    return path


def test_load_file_factory_with_seed(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    a = load_factory(f"{path}:factory", seed=0)
    b = load_factory(f"{path}:factory", seed=3)
    assert isinstance(a, CustomTask) and a.name == "toy" and len(a.train) == 40
    assert not torch.equal(a.train.tensors[0], b.train.tensors[0])  # the seed reached it
    assert isinstance(a.resolved_loss(), nn.CrossEntropyLoss)
    c = load_factory(f"{path}:no_args", seed=0)
    assert torch.equal(c.train.tensors[0], load_factory(f"{path}:factory", seed=7)
                       .train.tensors[0])
    r = load_factory(f"{path}:regression", seed=0)
    assert r.task == "regression" and isinstance(r.resolved_loss(), nn.MSELoss)


def test_load_module_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(pkg, "", name="tasks.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = load_factory("mypkg.tasks:factory", seed=1)
    assert task.name == "toy"


def test_task_data_draws_the_probe_from_train_eval(tmp_path: Path) -> None:
    task = load_factory(f"{write(tmp_path, '')}:factory", seed=0)
    td = task_data(task, probe_size=8, seed=5)
    assert td.name == "toy" and td.task == "classification" and td.num_outputs == 2
    assert len(td.probe) == 8 and td.probe_indices == tuple(sorted(td.probe_indices))
    assert td.probe_indices == task_data(task, probe_size=8, seed=5).probe_indices
    x0, _ = td.probe[0]
    assert torch.equal(x0, task.train[td.probe_indices[0]][0])


def test_is_custom_spec() -> None:
    assert is_custom_spec("examples/small_cnn.py:factory")
    assert is_custom_spec("pkg.mod:factory")
    assert not is_custom_spec("resnet32")


BAD_BODIES: dict[str, tuple[str, str]] = {
    # case: (extra source, "factory attribute|expected message fragment")
    "no-attribute": ("", "missing|no attribute 'missing' (expected a function returning "
                         "sgdtop.custom.CustomTask); it defines: data, factory, no_args"),
    "not-callable": ("answer = 42\n", "answer|is a int, not callable (expected a function"),
    "takes-args": ("def f(a, b): pass\n", "f|takes argument(s) a, b; expected no arguments"),
    "raises": ("def f():\n    raise RuntimeError('no GPU\\nsecond line')\n",
               "f|f() raised RuntimeError: no GPU second line"),
    "wrong-type": ("def f():\n    return nn.Linear(2, 2)\n",
                   "f|f() returned a Linear, expected sgdtop.custom.CustomTask("),
    "model-not-module": ("def f():\n    t = factory(); t.model = 'net'; return t\n",
                         "f|CustomTask.model is a str, expected a torch.nn.Module"),
    "no-params": ("def f():\n    t = factory(); t.model = nn.ReLU(); return t\n",
                  "f|CustomTask.model has no trainable parameters"),
    "empty-train": ("def f():\n    t = factory(); t.train = data(0, 0); return t\n",
                    "f|CustomTask.train is empty (expected at least one"),
    "empty-test": ("def f():\n    t = factory(); t.test = []; return t\n",
                   "f|CustomTask.test is empty"),
    "not-a-dataset": ("def f():\n    t = factory(); t.train = 5; return t\n",
                      "f|CustomTask.train is a int, expected a Dataset"),
    "item-not-pair": ("def f():\n    t = factory(); t.train = [torch.zeros(4)]; return t\n",
                      "f|CustomTask.train[0] is a Tensor, expected a pair (input tensor, "
                      "target)"),
    "bad-task": ("def f():\n    t = factory(); t.task = 'ranking'; return t\n",
                 "f|CustomTask.task is 'ranking', expected 'classification' or 'regression'"),
    "bad-outputs": ("def f():\n    t = factory(); t.num_outputs = 0; return t\n",
                    "f|CustomTask.num_outputs is 0, expected a positive integer"),
    "bad-loss": ("def f():\n    t = factory(); t.loss_fn = 3; return t\n",
                 "f|CustomTask.loss_fn is not callable"),
    "train-eval-size": ("def f():\n    t = factory(); t.train_eval = data(3, 0); return t\n",
                        "f|CustomTask.train_eval has 3 examples, train has 40"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_factories_are_one_clear_line(tmp_path: Path, case: str) -> None:
    body, expect = BAD_BODIES[case]
    attr, fragment = expect.split("|", 1)
    path = write(tmp_path, body)
    with pytest.raises(CustomTaskError) as info:
        load_factory(f"{path}:{attr}", seed=0)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message  # names the file
    assert fragment in message, message


def test_bad_specs_and_files(tmp_path: Path) -> None:
    cases = {
        "no-colon.py": "expected path/to/file.py:factory or package.module:factory",
        f"{tmp_path}/missing.py:factory": "missing.py: no such file (expected a Python file",
        f"{tmp_path}/:factory": "a directory (expected a Python file",
        "no_such_pkg_xyz.mod:factory": "no_such_pkg_xyz.mod: no such module (expected",
        "file.py:not-an-identifier": "expected path/to/file.py:factory",
    }
    for spec, fragment in cases.items():
        with pytest.raises(CustomTaskError) as info:
            load_factory(spec, seed=0)
        assert fragment in str(info.value) and "\n" not in str(info.value), spec
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise ImportError('needs foo')\n")
    with pytest.raises(CustomTaskError, match=r"broken\.py: importing it raised ImportError: "
                                              r"needs foo$"):
        load_factory(f"{broken}:factory", seed=0)
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def factory(:\n")
    with pytest.raises(CustomTaskError, match=r"syntax\.py: importing it raised SyntaxError"):
        load_factory(f"{syntax}:factory", seed=0)


def test_factory_file_can_import_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "helper_mod_for_sgdtop_test.py").write_text("WIDTH = 4\n")
    path = write(tmp_path, "import helper_mod_for_sgdtop_test as h\n"
                           "def f():\n    return factory()\n")
    assert load_factory(f"{path}:f", seed=0).name == "toy"
    assert str(tmp_path) not in sys.path  # put back


def test_small_cnn_example_factory() -> None:
    task = load_factory(f"{EXAMPLES / 'small_cnn.py'}:factory", seed=0)
    assert task.task == "classification" and task.num_outputs == 4
    assert len(task.train) == 1024 and len(task.test) == 256
    x, y = task.train[0]
    assert x.shape == (3, 16, 16) and y.dtype == torch.int64
    n_params = sum(p.numel() for p in task.model.parameters())
    assert n_params == 2468
    assert task.model(x[None]).shape == (1, 4)
    # relative spec, as a user types it from the repository root
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        assert load_factory("examples/small_cnn.py:factory", seed=1).name == task.name
    finally:
        os.chdir(cwd)


def test_monitor_loop_example_runs(tmp_path: Path) -> None:
    env = {**os.environ, "SGDTOP_RUNS_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / "monitor_loop.py"), "--epochs", "3"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run_dir,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert f"run completed: {run_dir}" in proc.stdout
    res = read_events(run_dir / EVENTS_FILE)
    kinds = [ev.kind for ev in res.records]
    assert not res.bad_lines and kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert res.records[-1].status == "completed"
    assert kinds.count("eval") == 3 and kinds.count("spectrum") >= 4
    assert "dense_spectrum" in kinds
    lrs = sorted({round(ev.lr, 6) for ev in res.records if ev.kind == "spectrum"})
    assert lrs == [0.015, 0.05]  # η read from the optimizer as the schedule changes it
