"""The layout: one package per lab, which imports only the shared modules, its own, and named seams."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ("shallow", "kernels", "architectures", "catdog")
SHARED = {"core.data", "core.images", "core.device", "core.labs", "core.devserver", "core.cache"}
# The documented seams between labs: (importing lab, imported module).
SEAMS = {
    ("kernels", "core.catdog.classify"),  # The kernel page shows the cat-or-dog network's first filters.
    ("architectures", "core.shallow.runs"),  # The architectures page plots the saved shallow-net runs.
    ("shallow", "core.kernels.link"),  # A trained CNN's kernels open in the kernel lab.
}


def imported_modules(path: Path) -> set[str]:
    """Every `core.*` module a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "core"}
    return {name for name in names if name == "core" or name.startswith("core.")}


def lab_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LABS else None


@pytest.mark.parametrize("lab", LABS)
def test_each_lab_package_says_what_it_holds_and_may_import(lab):
    """Each package's __init__ docstring names its modules and the imports allowed."""
    package = ROOT / "core" / lab
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring and "May import" in docstring
    for module in package.glob("*.py"):
        if module.name != "__init__.py":
            assert module.name in docstring, f"core/{lab}/__init__.py does not mention {module.name}"


@pytest.mark.parametrize("folder", ["core", "pages"])
def test_no_lab_reaches_into_another_except_through_a_seam(folder):
    """core/<lab>/ and pages/<lab>/ import shared modules, their own lab, and the named seams only."""
    offences = []
    for lab in LABS:
        for path in sorted((ROOT / folder / lab).glob("*.py")):
            for module in imported_modules(path):
                other = lab_of(module)
                if other not in (None, lab) and (lab, module) not in SEAMS:
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offences == []


def test_core_never_imports_streamlit():
    """The library stays UI-free: no module under core/ imports streamlit."""
    users = [
        str(path.relative_to(ROOT))
        for path in ROOT.joinpath("core").rglob("*.py")
        if any(
            isinstance(node, (ast.Import, ast.ImportFrom))
            and any(
                name.split(".")[0] == "streamlit"
                for name in ([node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names])
            )
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert users == []


def test_page_files_stay_short():
    """Every page file and page part is under about 150 lines (long text lives in assets/)."""
    long = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in ROOT.joinpath("pages").rglob("*.py")
        if len(path.read_text(encoding="utf-8").splitlines()) > 160
    }
    assert long == {}
