"""largestyle: neural style transfer at print resolution.

``largestyle.render(content, style, target_size=...)`` renders in one call;
``RenderConfig``, ``Engine`` and ``largestyle.engine.events`` give finer control, and
``run_job`` renders into a resumable job directory as the command line does.
"""

import os


# Huge pages stop PyTorch's CPU allocator from faulting large buffers back in on every
# evaluation (bench/bench_hugepages.py). PyTorch reads this once, at its first allocation,
# so it is set before torch is imported; a user's own setting wins.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
# LARGESTYLE_DETERMINISTIC=1: deterministic GPU kernels, so a resumed CUDA render is bit-identical
# (on the CPU it always is). cuBLAS needs its workspace fixed before CUDA starts; measured by
# bench/device_check.py against the default kernels.
DETERMINISTIC_ENV = "LARGESTYLE_DETERMINISTIC"
if os.environ.get(DETERMINISTIC_ENV) == "1":
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402

if os.environ.get(DETERMINISTIC_ENV) == "1":
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False

from .core.version import __version__  # noqa: E402
from .api import LargestyleWarning, render  # noqa: E402
from .config.settings import RenderConfig, make_config  # noqa: E402
from .engine.engine import Engine  # noqa: E402
from .core.errors import LargestyleError  # noqa: E402
from .io.read import load_image  # noqa: E402
from .io.write import save_image  # noqa: E402
from .jobs.job import run_job  # noqa: E402

__all__ = ["render", "Engine", "RenderConfig", "make_config", "LargestyleError", "LargestyleWarning",
           "load_image", "save_image", "run_job", "__version__"]
