"""The README's commands start their servers for any user, root included (a fresh container).

``make lab`` and ``make present`` run exactly as the README shows them, with only a port, a
token and ``--no-browser`` added through the Makefile's ``LAB_ARGS``/``VOILA_ARGS``.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None or os.name != "posix",
                                reason="needs make and a POSIX shell")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(args, url, tmp_path, timeout=90):
    """Start ``make ARGS``, wait until ``url`` answers 200; return what the command printed."""
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    for var in ("IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                "MPLCONFIGDIR"):
        env[var] = str(tmp_path / var.lower())
    log = tmp_path / "make.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["make", "--no-print-directory", *args], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"make {args[0]} exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        return log.read_text()
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"make {args[0]} did not answer at {url} in {timeout} s:\n{log.read_text()[-2000:]}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_make_lab_starts_jupyterlab_as_any_user(tmp_path):
    port, token = _free_port(), "t0ken"
    args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    log = _serve(["lab", f"LAB_ARGS={args}"], f"http://127.0.0.1:{port}/api/status?token={token}",
                 tmp_path)
    assert "Running as root is not recommended" not in log


def test_make_present_starts_voila(tmp_path):
    port = _free_port()
    _serve(["present", "NB=03", f"PORT={port}", "VOILA_ARGS=--no-browser"],
           f"http://127.0.0.1:{port}/voila/static/voila.js", tmp_path)


# --------------------------------------------------------------------------- what each command installs
def _dry_run(target, tmp_path, *variables):
    """The commands ``make -n TARGET`` would run for a venv that does not exist yet."""
    venv = tmp_path / "venv"
    out = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}", *variables],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.replace(str(venv), "VENV")


def test_make_lab_installs_the_runtime_set_only(tmp_path):
    out = _dry_run("lab", tmp_path)
    assert "python3 -m venv VENV" in out
    assert "pip install -e '.[lab]'" in out and "dev" not in out and "present" not in out


def test_make_test_and_present_install_their_sets(tmp_path):
    assert "pip install -e '.[dev]'" in _dry_run("test", tmp_path)
    assert "pip install -e '.[lab,present]'" in _dry_run("present", tmp_path)


def test_make_takes_the_interpreter_from_python(tmp_path):
    out = _dry_run("lab", tmp_path, "PYTHON=python3.12")
    assert out.splitlines()[0] == "python3.12 -m venv VENV"
