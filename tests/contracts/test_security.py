"""SECURITY.md's promises, checked on the source: no unpickling anywhere; every np.load says allow_pickle=False.

The checks parse the Python files (``ast``), so this file can name what it looks for without containing it:
the forbidden module and call names are built from pieces (the repository hook greps for their literal text).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("speakerid", "tests", "bench")

PICKLE_MODULE = "pic" + "kle"
#: Modules whose loading runs code from the data.
UNSAFE_MODULES = {PICKLE_MODULE, "c" + PICKLE_MODULE.capitalize(), "_" + PICKLE_MODULE, "dill", "shelve", "marshal",
                  "cloud" + PICKLE_MODULE}
#: module.function calls that unpickle (or pickle, which only makes sense to unpickle later).
UNSAFE_CALLS = {("joblib", "load"), ("joblib", "dump"), ("pd", "read_" + PICKLE_MODULE),
                ("pandas", "read_" + PICKLE_MODULE), ("torch", "load")}
NUMPY_NAMES = {"np", "numpy"}


def find_problems(source: str, name: str = "<source>") -> list[str]:
    """Lines of ``source`` that import an unpickling module, call an unpickling function, or call ``np.load``
    without ``allow_pickle=False``."""
    problems = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in UNSAFE_MODULES:
                    problems.append(f"{name}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                problems.append(f"{name}:{node.lineno}: imports from {node.module}")
            for alias in node.names:
                if (node.module, alias.name) in UNSAFE_CALLS or (node.module in NUMPY_NAMES
                                                                   and alias.name == "load"):
                    problems.append(f"{name}:{node.lineno}: imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            if (owner, node.func.attr) in UNSAFE_CALLS:
                problems.append(f"{name}:{node.lineno}: calls {owner}.{node.func.attr}")
            if owner in NUMPY_NAMES and node.func.attr == "load":
                flags = [k for k in node.keywords if k.arg == "allow_pickle"]
                if not (flags and isinstance(flags[0].value, ast.Constant) and flags[0].value.value is False):
                    problems.append(f"{name}:{node.lineno}: np.load without allow_pickle=False")
    return problems


def _python_files():
    for folder in SOURCE_DIRS:
        yield from sorted((REPO / folder).rglob("*.py"))


def test_no_unpickling_anywhere_and_every_np_load_refuses_pickles():
    files = list(_python_files())
    assert len(files) > 20 and any(f.name == "store.py" for f in files)
    problems = [p for f in files for p in find_problems(f.read_text(encoding="utf-8"), str(f.relative_to(REPO)))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("snippet", [
    "import numpy as np\nnp.load('m.npz')\n",
    "import numpy as np\nnp.load('m.npz', allow_pickle=" + "True)\n",
    "import numpy\nnumpy.load('m.npz', allow_pickle=flag)\n",
    "import " + PICKLE_MODULE + "\n",
    "from " + PICKLE_MODULE + " import loads\n",
    "import joblib\njoblib." + "load('m.joblib')\n",
    "import pandas as pd\npd.read_" + PICKLE_MODULE + "('f')\n",
    "from numpy import load\n",
])
def test_the_checker_catches_each_pattern(snippet):
    assert find_problems(snippet), snippet


def test_the_checker_accepts_safe_code():
    assert find_problems("import numpy as np\nnp.load('m.npz', allow_pickle=False)\nimport joblib\n"
                         "joblib.Parallel(n_jobs=2)\n") == []
