"""The example notebooks in ``gallery/`` run top to bottom, so they cannot rot.

Each notebook is executed in a fresh kernel of this interpreter (ipykernel's ``python3``
spec launches ``sys.executable``; a probe cell appended to the in-memory copy checks it),
with ``XAI_PANEL_CACHE`` in a temporary folder. The notebooks assert on their own results,
so an API change that breaks them fails here. Committed notebooks carry no outputs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "gallery").glob("*.ipynb"))
PANEL_MIME_TYPES = {"application/vnd.holoviews_exec.v0+json", "text/html"}
_PROBE = "import sys; print(sys.prefix)"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in kernel tracebacks


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, f"expected the example notebooks in {REPO / 'gallery'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebooks_carry_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.fixture(scope="module")
def notebook_cache(tmp_path_factory) -> Path:
    """One cache for all notebooks: the ONNX export is made once, not per notebook."""
    return tmp_path_factory.mktemp("notebook-cache")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, notebook_cache, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("XAI_PANEL_CACHE", str(notebook_cache))
    monkeypatch.delenv("XAI_PANEL_STORE", raising=False)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}})
    try:
        client.execute()
    except CellExecutionError as exc:  # the message holds the cell's source and traceback
        pytest.fail(f"{path.name} failed:\n{_ANSI.sub('', str(exc))}", pytrace=False)

    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert not errors, f"{path.name}: {[e.ename + ': ' + e.evalue for e in errors]}"
    probe = nb.cells[-1]
    printed = "".join(out.get("text", "") for out in probe.outputs if out.output_type == "stream").strip()
    assert printed == sys.prefix, f"the kernel ran {printed!r}, not this environment ({sys.prefix})"
    # pn.extension() itself emits a holoviews_exec bundle: count only objects a cell displayed.
    shown = [out for cell in nb.cells[:-1] if cell.cell_type == "code" for out in cell.outputs
             if out.output_type == "execute_result" and PANEL_MIME_TYPES <= set(out.data)]
    assert shown, f"{path.name} displayed no Panel/Bokeh output"
