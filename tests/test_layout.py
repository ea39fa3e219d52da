"""The shape of the package: dependencies one way, small modules and functions.

Parses every module with ``ast`` (nothing is imported), so a move that breaks the
rule fails here, with the offending import named.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "largestyle"

# Each package may import from its own modules and from packages of a lower tier only.
TIERS = {"core": 0, "geometry": 1, "config": 2, "io": 3, "network": 3, "imaging": 3, "gatys": 4, "engine": 5,
         "jobs": 6, "api": 6, "cli": 7}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# Modules over MAX_MODULE_LINES must say why in their docstring, with this phrase.
LONG_MODULE_PHRASE = "longer than"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, ("largestyle",) + parts


def package_of(name: tuple[str, ...]) -> str | None:
    """'engine' for ('largestyle', 'engine', 'planner'); None for the top-level package itself."""
    return name[1] if len(name) > 1 else None


def imported(path: Path, name: tuple[str, ...]):
    """(line, absolute module tuple) of every import of largestyle code in the module."""
    is_package = path.name == "__init__.py"
    here = name[:-1] if not is_package else name[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = base + tuple(node.module.split(".") if node.module else ())
            elif node.module and node.module.split(".")[0] == "largestyle":
                target = tuple(node.module.split("."))
            else:
                continue
            if node.module is None:  # `from . import a, b`: each name is a module of that package
                for alias in node.names:
                    yield node.lineno, target + (alias.name,)
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "largestyle":
                    yield node.lineno, tuple(alias.name.split("."))


def tier_of(package: str | None, module: tuple[str, ...]) -> int | None:
    key = package if package is not None else None
    if key is None:
        return None
    if key.endswith(".py"):
        key = key[:-3]
    return TIERS.get(key)


def test_every_package_has_a_tier():
    packages = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path, _ in modules()}
    assert packages - set(TIERS) == {"__init__", "__main__"}


def test_imports_go_one_way():
    broken = []
    for path, name in modules():
        mine = package_of(name)
        if mine in (None, "__init__", "__main__"):
            continue
        for line, target in imported(path, name):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {'.'.join(target)}"
            theirs = package_of(target)
            if theirs is None or theirs == "__version__":
                broken.append(f"{where}: nothing imports the package's __init__")
            elif theirs == mine:
                continue
            elif theirs == "cli":
                broken.append(f"{where}: nothing imports cli")
            elif TIERS[theirs] >= TIERS[mine]:
                broken.append(f"{where}: {mine} (tier {TIERS[mine]}) may not import {theirs} (tier {TIERS[theirs]})")
    assert not broken, "\n".join(broken)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: an import from io into network is reported."""
    module = tmp_path / "largestyle" / "network" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..io.read import load_image\nfrom . import vgg\n")
    found = list(imported(module, ("largestyle", "network", "bad")))
    assert [target for _, target in found] == [("largestyle", "io", "read"), ("largestyle", "network", "vgg")]
    assert TIERS["io"] >= TIERS["network"]


def test_modules_are_small_or_say_why():
    long = []
    for path, name in modules():
        lines = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_MODULE_LINES and LONG_MODULE_PHRASE not in doc.lower():
            long.append(f"{path.relative_to(PACKAGE.parent)}: {lines} lines")
    assert not long, "\n".join(long)


def test_functions_are_short():
    long = []
    for path, name in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {length} lines")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("package", sorted(set(TIERS) - {"api"}))
def test_each_package_says_what_it_owns(package):
    assert ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))


TRANSFER_MODULE = ("largestyle", "core", "transfer")
DTYPE_NAMES = {"float16", "float32", "float64", "bfloat16", "uint8", "uint16", "int32", "int64", "bool"}


def _is_dtype(node: ast.expr) -> bool:
    """A dtype by its spelling: torch.float32, something.dtype, a name holding one, torch.promote_types(...)."""
    if isinstance(node, ast.Attribute):
        return "dtype" in node.attr or (isinstance(node.value, ast.Name) and node.value.id == "torch"
                                        and node.attr in DTYPE_NAMES)
    if isinstance(node, ast.Name):
        return "dtype" in node.id
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "promote_types"


def device_crossings(tree: ast.AST):
    """(line, code) of every .cpu(), .cuda() and .to() that may move a tensor or module between devices."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        if method in ("cpu", "cuda") or method == "to" and (
                not all(_is_dtype(arg) for arg in node.args)
                or any(keyword.arg not in ("dtype", "memory_format") for keyword in node.keywords)):
            yield node.lineno, ast.unparse(node)


def test_tensors_cross_between_host_and_device_only_in_core_transfer():
    """Moves go through largestyle.core.transfer, where tests/engine/test_fake_device.py can trust them."""
    found = [f"{path.relative_to(PACKAGE.parent)}:{line} {code}" for path, name in modules() if name != TRANSFER_MODULE
             for line, code in device_crossings(ast.parse(path.read_text()))]
    assert not found, "\n".join(found)


def test_the_crossing_rule_catches_a_move():
    moves = ast.parse("a.to(device)\nb.cpu()\nc.to(other)\nd.to('cuda', torch.float32)\ne.to(device=x)")
    kept = ast.parse("a.to(torch.float32)\nb.to(x.dtype)\nc.to(dtype=torch.bfloat16)\nd.to(torch.promote_types(p, q))")
    assert len(list(device_crossings(moves))) == 5 and not list(device_crossings(kept))
