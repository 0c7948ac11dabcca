"""The op package shows its design: kernels compute, only the dispatch chooses.

Read from the source (AST), so a new kernel that probes the execution context, hard-codes a
threshold or calls another kernel fails here, not in a benchmark months later.
"""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

import upsampler.conv_transpose as package
from upsampler.conv_transpose import dispatch

ROOT = Path(package.__file__).parent
KERNELS = sorted((ROOT / "kernels").glob("*.py"))
# what a kernel may import from the package: where taps land, and the argument checks
KERNEL_IMPORTS = {"upsampler.conv_transpose.plan", "upsampler.conv_transpose.checks"}
# questions about the execution context (scripting, tracing, compiling, torch.func, autograd)
PROBES = {"is_scripting", "is_tracing", "is_compiling", "is_capturing",
          "_are_functorch_transforms_active", "is_grad_enabled", "transformed", "eager"}
CHOOSERS = {"dispatch.py", "capture.py"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_modules(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: p.name)
def test_kernels_import_only_the_plan_and_the_checks(path: Path) -> None:
    ours = {m for m in _imported_modules(_tree(path)) if m.startswith("upsampler")}
    assert ours <= KERNEL_IMPORTS, f"{path.name} imports {sorted(ours - KERNEL_IMPORTS)}"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: p.name)
def test_no_context_probe_outside_the_dispatch(path: Path) -> None:
    if path.name in CHOOSERS:
        return
    # the module and functional ask the dispatch (``dispatch.eager()``); kernels never ask
    tree = _tree(path)
    probes = {
        ast.unparse(node.func) for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _name(node.func) in PROBES
        and not (path.parent.name != "kernels" and ast.unparse(node.func).startswith("dispatch."))
    }
    assert not probes, f"{path.name} probes {sorted(probes)}"


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: p.name)
def test_kernels_hold_no_threshold(path: Path) -> None:
    # a module-level number in a kernel would be a threshold outside the Limits table
    numbers = [
        ast.unparse(node) for node in _tree(path).body
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.BinOp))
        and isinstance(getattr(node.value, "value", 0), (int, float))
        and not isinstance(getattr(node.value, "value", None), str)
    ]
    assert not numbers, f"{path.name}: {numbers}"


def test_every_limit_is_read_by_the_dispatch_or_the_functional() -> None:
    sources = (ROOT / "dispatch.py").read_text() + (ROOT / "functional.py").read_text()
    for field in fields(dispatch.Limits):
        assert f".{field.name}" in sources, f"Limits.{field.name} is never read"


def test_force_restores_the_choice_and_rejects_unknown_names() -> None:
    route = dispatch.forward_path(2, 8, 40, 4, 16, 8, 4, 0, 1, 1, "cpu")
    with dispatch.force(forward="index", backward="dense", fold_ratio=0):
        assert dispatch.forward_path(2, 8, 40, 4, 16, 8, 4, 0, 1, 1, "cpu").kernel == "index"
        assert dispatch.backward_path(2, 8, 40, 4, 16, 8, 4, 0, 1, 1, "cpu").kernel == "dense"
        assert dispatch.limits().fold_ratio == 0
    assert dispatch.forward_path(2, 8, 40, 4, 16, 8, 4, 0, 1, 1, "cpu") == route
    assert dispatch.limits() == dispatch.LIMITS
    with pytest.raises(ValueError, match="forward must be one of .*'gpu'"):
        with dispatch.force(forward="gpu"):
            pass
    with pytest.raises(ValueError, match="'backward' .*|backward must be one of .*'torch'"):
        with dispatch.force(backward="torch"):
            pass
    with pytest.raises(ValueError, match="'fold' is not a Limits entry"):
        with dispatch.force(fold=3):
            pass
    with pytest.raises(ValueError, match="forced forward path 'depthwise' needs one input"):
        with dispatch.force(forward="depthwise"):
            dispatch.forward_path(1, 4, 10, 2, 3, 2, 0, 0, 1, 1, "cpu")
