"""JupyterLab comes with the set-up, and every notebook's kernel is the set-up's Python with dint (`make lab`)."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# what `make lab` sets: the environment's kernels before any of the user's own
ENV = {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1"}


def test_jupyter_lab_is_installed_with_the_set_up():
    out = subprocess.run([str(BIN / "jupyter"), "lab", "--version"], capture_output=True, text=True, env=ENV,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip().split(".")[0]) >= 4


def _kernel_names():
    return {json.loads(p.read_text())["metadata"]["kernelspec"]["name"] for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}


def test_every_notebook_names_one_kernel():
    assert _kernel_names() == {"python3"}


@pytest.mark.parametrize("name", sorted(_kernel_names()))
def test_the_notebooks_kernel_is_this_python_with_dint(name):
    """The kernel each notebook names starts as this environment's Python and imports this checkout's dint."""
    code = ("import json, sys, jupyter_client\n"
            f"km, kc = jupyter_client.manager.start_new_kernel(kernel_name={name!r})\n"
            "try:\n"
            "    out = []\n"
            "    kc.execute_interactive('import sys, dint; print(sys.prefix); print(dint.__file__)', timeout=120,\n"
            "                           output_hook=lambda m: out.append(m['content'].get('text', '')))\n"
            "    print(json.dumps(''.join(out).split()))\n"
            "finally:\n"
            "    kc.stop_channels(); km.shutdown_kernel(now=True)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    prefix, dint_file = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    import dint
    assert Path(dint_file).resolve() == Path(dint.__file__).resolve()


def test_make_lab_serves_the_notebooks():
    """`make lab`'s own command (its recipe, with the set-up taken as done) starts a server whose root is notebooks/,
    listing the claim notebooks."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = f"--no-browser --port={port} --ip=127.0.0.1 --IdentityProvider.token="
    prefix = Path(sys.prefix)
    recipe = subprocess.run(["make", "-n", "-s", "--no-print-directory", "-o", str(prefix / ".dint-installed"), "lab",
                             f"VENV={prefix}", f"LAB_ARGS={args}"], cwd=ROOT, capture_output=True, text=True, check=True)
    command = recipe.stdout.strip()
    assert "jupyter lab notebooks" in command and "pip" not in command
    server = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=os.environ, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        names, deadline = None, time.time() + 120
        while names is None and time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as r:
                    names = {c["name"] for c in json.load(r)["content"]}
            except OSError:
                time.sleep(0.5)
        assert names is not None, server.stderr.read()[-3000:] if server.poll() is not None else "no answer in 120 s"
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
    finally:
        os.killpg(server.pid, signal.SIGTERM)   # bash and the server it started
        server.wait(timeout=30)
