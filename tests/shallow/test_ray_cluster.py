"""Joining an external Ray cluster, as the README tells a user: `ray start --head`, a worker, the address.

The cluster is started with Ray's own command line on this machine (a head that offers no
CPUs, so every job must train on the worker node that joins it), with token authentication
on and its files in a temporary folder. The app is given the GCS address or the Ray
Client address and the cluster's token only (`RAY_AUTH_TOKEN`), the way a user copies it
to the app's machine. `ray stop` would end every Ray process on the machine (other
instances and other tests' included), so each `ray start` runs in a session of its own,
whose processes (Ray's services and the workers they start) are ended on the way out,
whatever happened, and the test checks that none is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.shallow.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
TINY = {"hidden_units": [8], "dropout": 0.5, "learning_rate": 3e-3, "train_limit": 600, "batch_size": 50, "epochs": 2}
# The app's queue (core.shallow.jobs.default_queue) in a process of its own, as the server runs it.
QUEUE_SCRIPT = """
import json, sys
from core.shallow.config import TrainingConfig
from core.shallow.jobs import default_queue
queue = default_queue()
try:
    progress = queue.submit(TrainingConfig.from_dict(json.loads(sys.argv[1]))).wait(240)
finally:
    queue.close()
print(json.dumps({"status": progress.status, "error": progress.error, "executor": progress.executor,
                  "node": progress.node, "run_id": progress.run_id, "capacity": queue.max_running}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def in_session(session: int) -> list[int]:
    """PIDs of the live processes in a session (Ray's workers rename themselves: their command lines say little)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            # After the command's name, in parentheses: state, ppid, process group, session.
            state, _, _, in_it = (entry / "stat").read_text().rpartition(")")[2].split()[:4]
            if entry.name.isdigit() and int(in_it) == session and state != "Z":
                found.append(int(entry.name))
        except (OSError, ValueError):
            pass
    return found


def end_session(session: int) -> list[int]:
    """Ends every process of one `ray start`'s session (SIGTERM, then SIGKILL); returns any still alive."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        for pid in in_session(session):
            try:
                os.kill(pid, sent)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while in_session(session) and time.monotonic() < deadline:
            time.sleep(0.2)
    return in_session(session)


@contextmanager
def ray_cluster(folder: str, token: str):
    """A head (no CPUs of its own) and a worker node with 2 CPUs, from `ray start`; yields their ports and, after, what was left.

    Each `ray start` runs in a session of its own; the services it leaves running (and the
    workers they start) stay in that session, which is ended on the way out, whatever happened.
    """
    gcs_port, client_port = free_port(), free_port()
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("RAY_", "EXPLORER_"))}
    environment |= {"HOME": folder, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--temp-dir", folder]
    commands = [
        [str(RAY), "start", "--head", "--port", str(gcs_port), "--ray-client-server-port", str(client_port)]
        + ["--include-dashboard", "false", "--num-cpus", "0", *common],
        [str(RAY), "start", "--address", f"127.0.0.1:{gcs_port}", "--num-cpus", "2", *common],
    ]
    cluster = {"gcs_port": gcs_port, "client_port": client_port, "left": []}
    sessions = []
    try:
        for command in commands:
            started = subprocess.Popen(
                command, cwd=folder, env=environment, start_new_session=True, stdout=subprocess.PIPE, text=True
            )
            sessions.append(started.pid)
            output, _ = started.communicate(timeout=90)
            assert started.returncode == 0, f"{' '.join(command)} failed:\n{output}"
        yield cluster
    finally:
        for session in reversed(sessions):
            cluster["left"] += end_session(session)


def test_the_app_joins_a_cluster_started_with_ray_start_and_stores_its_runs(tmp_path):
    """A head and a worker from `ray start` (token auth on) train a CLI job and a queue job; both runs land in our store."""
    pytest.importorskip("ray")
    import keras

    from core.data import find_dataset_dir
    from core.shallow.config import TrainingConfig, count_params

    folder = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # Short: Ray's socket paths live under it.
    token = secrets.token_hex(32)
    # What the app's machine is given: the address, the token (not RAY_AUTH_MODE) and the data.
    app_environment = {name: value for name, value in os.environ.items() if not name.startswith(("RAY_", "EXPLORER_"))}
    app_environment |= {
        "HOME": folder,
        "RAY_AUTH_TOKEN": token,
        "FASHION_MNIST_DIR": str(find_dataset_dir()),
        "EXPLORER_DATA_DIR": str(tmp_path),
    }
    try:
        with ray_cluster(folder, token) as cluster:
            cli = subprocess.run(
                [sys.executable, "-m", "core.shallow", "--neurons", "7", "--epochs", "1", "--train-limit", "500"]
                + ["--json", "--db", str(tmp_path / "runs.sqlite")],
                cwd=ROOT,
                env=app_environment | {"EXPLORER_RAY_ADDRESS": f"127.0.0.1:{cluster['gcs_port']}"},
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert cli.returncode == 0, cli.stderr[-3000:]
            queued = subprocess.run(
                [sys.executable, "-c", QUEUE_SCRIPT, json.dumps(TINY)],
                cwd=ROOT,
                env=app_environment | {"EXPLORER_RAY_ADDRESS": f"ray://127.0.0.1:{cluster['client_port']}"},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert queued.returncode == 0, queued.stderr[-3000:]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert cluster["left"] == [], "Ray processes were left running"

    by_cli = json.loads(cli.stdout.strip().splitlines()[-1])
    by_queue = json.loads(queued.stdout.strip().splitlines()[-1])
    assert by_cli["executor"] == by_queue["executor"] == "ray"
    assert by_cli["status"] == by_queue["status"] == "finished", by_queue["error"]
    assert by_cli["node"] and by_queue["node"]  # "host (address)" of the worker that trained it.
    assert by_queue["capacity"] == 2  # The cluster's 2 CPUs, 1 per job: two jobs at once.

    store = RunStore(tmp_path / "runs.sqlite")
    assert sorted(run.run_id for run in store.list_runs()) == sorted([by_cli["run_id"], by_queue["run_id"]])
    for run_id, config, epochs in (
        (by_cli["run_id"], TrainingConfig(hidden_units=(7,), epochs=1, train_limit=500), 1),
        (by_queue["run_id"], TrainingConfig.from_dict(TINY), 2),
    ):
        run = store.get_run(run_id)
        assert run.status == "finished" and run.epochs_run == epochs == len(store.history(run_id))
        assert run.has_model and Path(run.model_path).parent == store.models_dir
        model = keras.models.load_model(run.model_path)  # The bytes the worker sent, in the app's folder.
        assert model.count_params() == count_params(config)


def test_an_address_where_nothing_listens_is_refused_at_once_with_what_to_check():
    """A cluster address whose port is closed fails within seconds, saying so, instead of Ray's endless retries."""
    pytest.importorskip("ray")
    closed = free_port()  # Bound, then released: nothing listens there now.
    script = (
        "import sys\n"
        "from core.shallow.ray_executor import RayExecutor\n"
        "for address in sys.argv[1:]:\n"
        "    try:\n"
        "        RayExecutor(address)\n"
        "    except ValueError as error:\n"
        "        print(error)\n"
    )
    addresses = [f"127.0.0.1:{closed}", f"ray://127.0.0.1:{closed}", "no-such-host.invalid:6379"]
    result = subprocess.run(
        [sys.executable, "-c", script, *addresses], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    messages = result.stdout.strip().splitlines()
    assert len(messages) == 3, result.stdout
    for address, message in zip(addresses, messages, strict=True):
        assert message.startswith(f"Cannot reach the Ray cluster at {address!r}") and "nothing answers" in message
        assert "port is open" in message


def test_the_lab_says_when_its_cluster_cannot_be_reached_and_keeps_the_form(monkeypatch, tmp_path):
    """With EXPLORER_RAY_ADDRESS on a closed port the lab shows the reason as an error, not a traceback."""
    pytest.importorskip("ray")
    from streamlit.testing.v1 import AppTest

    import core.shallow.jobs

    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("EXPLORER_RAY_ADDRESS", address)
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(core.shallow.jobs, "_default_queue", None)  # The page makes its queue afresh.
    at = AppTest.from_file(str(ROOT / "pages" / "shallow" / "lab.py"), default_timeout=60).run()
    assert not at.exception, at.exception[0].value
    errors = [element.value for element in at.error]
    assert any(f"Cannot reach the Ray cluster at {address!r}" in error for error in errors), errors
    assert "Start training" in [button.label for button in at.button]
    assert core.shallow.jobs._default_queue is None  # Tried again on the next visit: the cluster may be up by then.
