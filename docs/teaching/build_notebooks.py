"""Build the teaching kit's Jupyter notebooks from its exercise files, outputs stripped.

    python docs/teaching/build_notebooks.py          # writes exN_*.ipynb beside the .py files

Each ``exN_*_starter.py`` and ``exN_*_solution.py`` becomes a notebook: its docstring and the
exercise's text from index.md as Markdown, then one code cell per import block, constant and
function, and a last cell that runs the exercise (the file's ``__main__`` block). The .py files
stay the source: the tests rebuild the notebooks and fail if the committed ones differ, and run
every solution notebook with nbclient.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def exercise_text(number: int) -> str:
    """The exercise's section of index.md (its heading and text, without the file links)."""
    index = (HERE / "index.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", index, flags=re.MULTILINE)
    for section in sections:
        if section.startswith(f"{number}. "):
            lines = [
                ln for ln in section.splitlines() if not ln.startswith(("Starter:", "Solution:"))
            ]
            return "## " + "\n".join(lines).strip()
    raise ValueError(f"index.md has no exercise {number}")


def _cells(source: str) -> list[tuple[str, str]]:
    """``(kind, text)`` cells of a Python file: its docstring, then its top-level statements
    grouped (consecutive imports or assignments together, each function alone), then the body
    of its ``__main__`` block."""
    tree = ast.parse(source)
    lines = source.splitlines()
    cells: list[tuple[str, str]] = []
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        cells.append(("markdown", str(body[0].value.value).strip()))
        body = body[1:]
    group: list[str] = []
    kind = None
    for node in body:
        start = node.lineno - 1
        if getattr(node, "decorator_list", None):
            start = node.decorator_list[0].lineno - 1
        text = "\n".join(lines[start : node.end_lineno])
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            main = "\n".join(lines[node.body[0].lineno - 1 : node.end_lineno])
            cells.append(("code", "\n".join(group)))
            cells.append(("code", textwrap.dedent(main)))
            return cells
        this = "def" if isinstance(node, ast.FunctionDef | ast.ClassDef) else "plain"
        if group and (this == "def" or kind == "def" or this != kind):
            cells.append(("code", "\n".join(group)))
            group = []
        group.append(text)
        kind = this
    if group:
        cells.append(("code", "\n".join(group)))
    return [c for c in cells if c[1].strip()]


def notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook of one exercise file, with no outputs."""
    number = int(path.name[2])
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    cells = _cells(path.read_text(encoding="utf-8"))
    head = f"{cells[0][1]}\n\n{exercise_text(number)}" if cells[0][0] == "markdown" else ""
    nb.cells = [nbformat.v4.new_markdown_cell(head)] if head else []
    for kind, text in cells[1:] if head else cells:
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        nb.cells.append(make(text))
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem}-{k}"  # stable ids: a rebuild changes nothing
    return nb


def sources() -> list[Path]:
    return sorted(HERE.glob("ex[0-9]_*.py"))


def main() -> int:
    for path in sources():
        out = path.with_suffix(".ipynb")
        nbformat.write(notebook(path), out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
