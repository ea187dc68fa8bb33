"""The ``pydarknet`` command as a package: every module imports (a broken one fails here instead
of its commands vanishing), the command tree is the README's, no module imports the package that
assembles them (no cycles), the packaged cfg files are found, and training prints Darknet's layer
table before its first iteration."""

import ast
import importlib
import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import pydarknet.cli
from conftest import ROOT
from pydarknet.cli import build_parser, main
from pydarknet.cli.common import builtin_cfg
from pydarknet.data import make_shapes_detection

CLI_DIR = pathlib.Path(pydarknet.cli.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(CLI_DIR)]))

# the README's command list (and what each Darknet-form group holds)
COMMANDS = {
    "info": None, "forward": None, "train": None, "demo": None, "detect": None,
    "detector": {"test", "map", "recall", "valid", "demo", "calc_anchors", "train"},
    "classifier": {"predict", "demo", "label", "test", "valid", "validcrop", "valid10",
                   "validmulti", "validfull", "train"},
    "rnn": {"train", "generate", "valid", "vec"},
    "export": {"onnx"}, "partial": None, "from_pjreddie": None,
    "average": None, "denormalize": None, "normalize": None, "reset": None, "rgbgr": None,
    "rescale": None, "visualize": None, "custom": None,
    "data": {"coco", "voc", "yolo", "labelme", "bdd", "kitti", "cifar", "idx", "check"},
}


def subcommands(parser):
    """{name: sub-parser} of a parser's sub-command group."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("name", MODULES)
def test_every_cli_module_imports(name):
    importlib.import_module(f"pydarknet.cli.{name}")


def test_the_command_tree_is_complete():
    top = subcommands(build_parser())
    assert set(top) == set(COMMANDS)
    for name, actions in COMMANDS.items():
        sub = subcommands(top[name])
        if actions is None:
            assert not sub and top[name].get_default("func") is not None, name
        else:
            assert set(sub) == actions, name
            assert all(p.get_default("func") is not None for p in sub.values()), name


@pytest.mark.parametrize("name", MODULES)
def test_no_cycles_and_nothing_hidden(name):
    """A command module imports the shared helpers (.common) and the library (..), never the
    package that assembles the commands nor a sibling; no ImportError is swallowed."""
    tree = ast.parse((CLI_DIR / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert not (node.module or "").startswith("pydarknet"), \
                    f"{name}.py: import the package relatively"
            elif node.level == 1 and name != "__init__":
                assert node.module == "common", f"{name}.py imports .{node.module or ''}"
            elif node.level == 2:
                assert node.module is not None and node.module.split(".")[0] != "cli", name
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            caught = ast.unparse(node.type)
            assert "ImportError" not in caught and "ModuleNotFoundError" not in caught, \
                f"{name}.py:{node.lineno}: except {caught} can hide a broken command"


def test_packaged_cfgs_are_found_and_are_the_repository_ones():
    """cfg/ ships inside the package (pydarknet/cfgs); the default cfgs resolve from it."""
    parser = subcommands(build_parser())
    for command, cfg in (("demo", "demo-shapes.cfg"), ("forward", "yolov4.cfg")):
        default = parser[command].get_default("cfg")
        assert default == builtin_cfg(cfg)
        assert os.path.isfile(default), default
    for cfg in sorted((ROOT / "cfg").glob("*.cfg")):
        assert pathlib.Path(builtin_cfg(cfg.name)).read_bytes() == cfg.read_bytes(), cfg.name


def test_python_m_pydarknet():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "pydarknet", "--help"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "detector" in out.stdout and "demo" in out.stdout


def test_training_prints_the_layer_table_first(tmp_path, capsys):
    ds = make_shapes_detection(str(tmp_path / "shapes"), train=8, valid=4, size=160, seed=0)
    cfg = tmp_path / "tiny-shapes.cfg"
    cfg.write_text((ROOT / "cfg" / "demo-shapes.cfg").read_text().replace("batch=16", "batch=2"))
    code = main(["detector", "train", ds["data"], str(cfg), "-dont_show", "--max-batches", "1",
                 "--backup", str(tmp_path / "backup")])
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    header = out.index("   layer   filters  size/strd(dil)      input                output")
    first = next(i for i, line in enumerate(out) if line.startswith(" 1: "))
    assert header < first
    assert any(line.startswith("Total BFLOPS") for line in out[header:first])


def test_forward_times_each_layer(capsys):
    code = main(["forward", "--cfg", str(ROOT / "cfg" / "demo-shapes.cfg"), "--layers", "3"])
    assert code == 0
    out = capsys.readouterr().out
    table = out.split("layers by time")[1].splitlines()
    assert len([ln for ln in table if ln.strip()[:1].isdigit()]) == 3
    assert "more layers: " in table[-1]


def test_a_file_the_command_cannot_write_is_an_error_not_a_traceback(tmp_path, capsys):
    """An OSError of a file or folder (a backup folder under a file, here) ends the command
    with the path and the reason, exit code 2."""
    ds = make_shapes_detection(str(tmp_path / "shapes"), train=4, valid=2, size=64, seed=1)
    (tmp_path / "a_file").write_text("")
    code = main(["train", str(ROOT / "cfg" / "demo-shapes.cfg"), ds["data"], "--backup",
                 str(tmp_path / "a_file" / "backup"), "--max-batches", "1"])
    assert code == 2
    assert capsys.readouterr().err.strip().endswith("a_file/backup: Not a directory")
