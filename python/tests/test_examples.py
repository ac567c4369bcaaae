"""The README's Python example and examples/hello.py run (with the library this session loaded)."""

import os
import re
import subprocess
import sys

import pytest

import armt
from conftest import REPO


def _run(args, **kw):
    env = dict(os.environ, ARMT_LIBRARY=armt.library_path(),
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(armt.__file__)),
                                           os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300, **kw)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_readme_example(rt):
    readme = os.path.join(REPO, "README.md")
    if not os.path.exists(readme):
        pytest.skip("no README.md")
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 10  # "a ten-line example"
    out = _run([sys.executable, "-c", code])
    assert out.strip()  # the decoded text


def test_examples_hello(rt):
    out = _run([sys.executable, os.path.join(REPO, "examples", "hello.py")])
    assert "16 new tokens" in out
