"""Data-parallel training with two CPU processes: both ranks end with the same parameters."""

import re
import socket
import subprocess
import sys
from pathlib import Path

from offload_agents.slm import TinyLMConfig, build_slm

ROOT = Path(__file__).resolve().parents[3]
TINY = TinyLMConfig(vocab_size=400, n_layer=1, n_embd=32, n_head=2, n_positions=384)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_stay_in_sync(tmp_path):
    slm = build_slm(tmp_path / "slm", config=TINY, n_per_family=2, progress=False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           str(ROOT / "examples" / "train_dagrpo.py"), "--slm", str(slm), "--steps", "2",
           "--max-new-tokens", "8"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = dict(re.findall(r"rank (\d)/2 params (\w+)", out.stdout))
    assert set(ranks) == {"0", "1"}, out.stdout
    assert ranks["0"] == ranks["1"]  # gradients were averaged across the two processes
