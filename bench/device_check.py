"""One-command check of largestyle on a GPU machine (H100/H200): correctness, memory model, speed.

Prints one JSON document on stdout (progress goes to stderr). Every section runs on its own:
one that fails records {"error": ...} and the others still run. The random network is used
throughout (no weights file, no network access needed).

    .venv/bin/python bench/device_check.py [--device cuda] [--quick] [--budget-seconds 450]
    .venv/bin/python bench/device_check.py --device cpu --quick      # smoke test, a minute or two

Sections (keys of the document):

- render_end_to_end: a tiny render through ``Engine.render``.
- exact_tiling_gradient: exact-tiled loss and gradient against the untiled ones, relative error
  (on CUDA also with TF32 off, since cuDNN's default TF32 convolutions round differently per window).
- sigkill_resume: the CLI killed by SIGKILL mid-level and resumed gives the same file as an
  uninterrupted run; plainly, and with LARGESTYLE_DETERMINISTIC=1 and a fixed cuBLAS workspace.
- memory_model: measured peak of one whole-level evaluation against the MemoryModel's estimates (CUDA only).
- evaluation_over_bare: seconds of a loss evaluation over a bare VGG-19 forward+backward, fp32 and bf16.
- largest_whole_level: the largest square level the memory model lets run whole, run once to confirm.
- exact_tiled_8192: seconds per exact-tiled evaluation of an 8192 px level with the planner's core.
- render_4096: wall time of a default 4096 px CLI render, fp32 against --precision bf16 (skipped when
  the time spent plus its estimate would pass --budget-seconds).

Full size is meant to take under 8 minutes on one H200 (sections 1-7 a few minutes by the
estimate in the module's constants; render_4096 only if it fits --budget-seconds); --quick uses
tiny sizes so that it runs on a CPU in a minute or two.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import largestyle
from largestyle.config.settings import make_config
from largestyle.core.vgg import halo
from largestyle.engine.engine import Engine
from largestyle.engine.memory import is_out_of_memory
from largestyle.gatys.lossweights import resolve_loss_weights
from largestyle.gatys.objective import Objective
from largestyle.gatys.targets import content_targets, style_targets
from largestyle.gatys.windowed import TiledObjective
from largestyle.io.write import save_image
from largestyle.jobs.layout import EVENTS_FILE, default_job_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GIB = 2 ** 30

# Sizes per mode: full size on an H200, and tiny ones that run on a 2-core CPU. `rounds`: timed
# rounds after a warm-up in section 5, whose medians are reported.
SIZES = {
    "full": dict(exact_size=1024, exact_core=256, resume_target=256, resume_iterations=20, resume_kill=8,
                 resume_checkpoint=3, resume_content=(240, 320), memory_sizes=(512, 1024, 2048),
                 bare_sizes=(1024, 2048, 4096), rounds=3, tiled_size=8192, tiled_evaluations=2, render_target=4096,
                 render_options={}, style_side=512),
    "quick": dict(exact_size=128, exact_core=48, resume_target=64, resume_iterations=10, resume_kill=7,
                  resume_checkpoint=2, resume_content=(96, 128), memory_sizes=(64, 128),
                  bare_sizes=(128, 256), rounds=1, tiled_size=512, tiled_evaluations=1, render_target=256,
                  render_options={"iterations": 8, "first_level_factor": 1}, style_side=128),
}
SUBPROCESS_TIMEOUT = 300  # seconds for one small CLI render (section 3)
# Section 8's estimate: seconds between evaluations (L-BFGS line search, resizes, checkpoints) as
# a multiple of the evaluations' own, and a process's start (import, CUDA context, calibration)
# when section 3 did not measure it.
RENDER_OVERHEAD, STARTUP_SECONDS = 1.5, 30.0


def log(message: str) -> None:
    print(f"[device_check] {message}", file=sys.stderr, flush=True)


def is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so the clock measures it (a no-op on the CPU)."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


def timed_call(function, device: str):
    """``function()``'s value and the seconds it took, its queued GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return value, time.perf_counter() - start


def timed(function, device: str) -> float:
    return timed_call(function, device)[1]


def free_memory(device: str) -> None:
    """Drop what a section left, so the caching allocator does not shrink the next one's budget."""
    gc.collect()
    if is_cuda(device):
        torch.cuda.empty_cache()


def smooth_image(height: int, width: int, generator: torch.Generator, cells: int = 16) -> torch.Tensor:
    """A (3, H, W) image in [0, 1]: bilinearly upsampled noise, so it looks like a photo more than static."""
    coarse = torch.rand(1, 3, max(2, height // cells), max(2, width // cells), generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear",
                                           align_corners=False)[0].clamp(0, 1)


def random_config(device: str, **options):
    return make_config(device=device, weights="random", **options)


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else abs(a - b)


def pixel_difference(first: Path, second: Path) -> dict:
    """Max and mean absolute difference of two 8-bit images, in 8-bit levels."""
    a, b = (np.asarray(Image.open(path).convert("RGB"), dtype=np.int16) for path in (first, second))
    if a.shape != b.shape:
        return {"shapes_differ": [list(a.shape), list(b.shape)]}
    difference = np.abs(a - b)
    return {"max_abs_pixel_difference": int(difference.max()), "mean_abs_pixel_difference": float(difference.mean())}


def cli_render(content: Path, style: Path, output: Path, device: str, options, env_changes: dict,
               timeout: float) -> dict:
    """Run ``largestyle render`` in a fresh process; returns its return code, wall time and any error text."""
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    command = [sys.executable, "-m", "largestyle", "render", str(content), str(style), "-o", str(output),
               "--weights", "random", "-q", "--device", device, *map(str, options)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"returncode": None, "timed_out_after_s": timeout, "wall_s": time.perf_counter() - start}
    result = {"returncode": done.returncode, "wall_s": time.perf_counter() - start}
    if done.returncode not in (0, -signal.SIGKILL):
        result["stderr_tail"] = done.stderr[-2000:]
    return result


def job_summary(output: Path) -> dict:
    """What the job directory's events say about its last run: level modes, evaluations restored from
    checkpoints and run in all, seconds inside the render (without the process's start)."""
    try:
        lines = (default_job_dir(output) / EVENTS_FILE).read_text().splitlines()
    except OSError as exc:
        return {"events_unreadable": str(exc)}
    runs, summary = 0, {}
    for line in lines:  # events.jsonl is appended to by every run of the job
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "RenderStarted":
            runs += 1
            summary = {"levels": [f"{level['width']}x{level['height']} {level['mode']}"
                                  for level in event.get("levels", [])], "restored_evaluations": 0}
        elif kind == "Resumed":
            summary["restored_evaluations"] = summary.get("restored_evaluations", 0) + event.get("evaluations", 0)
        elif kind == "RenderFinished":
            summary.update(render_s=event.get("seconds"), evaluations=event.get("evaluations"))
    return {"runs_started": runs, **summary}


# --- 1 -----------------------------------------------------------------------------------------

def render_end_to_end(check: "Check") -> dict:
    """A tiny render through the public engine: does the whole pipeline run on this device?"""
    generator = torch.Generator().manual_seed(1)
    content, style = torch.rand(3, 72, 96, generator=generator), torch.rand(3, 96, 96, generator=generator)
    config = random_config(check.device, target_size=96, iterations=5, first_level_factor=1)
    output = Engine(config).render(content, style)
    return {"output_shape": list(output.shape), "finite": bool(torch.isfinite(output).all()),
            "min": float(output.min()), "max": float(output.max())}


# --- 2 -----------------------------------------------------------------------------------------

def exact_tiling_gradient(check: "Check") -> dict:
    """Exact tiling's loss and gradient against the untiled ones on the same image, in float32."""
    size, core = check.sizes["exact_size"], check.sizes["exact_core"]
    config = random_config(check.device)
    engine = Engine(config)
    network, weights = engine.network, resolve_loss_weights(config)
    generator = torch.Generator().manual_seed(2)
    image, content, style = (torch.rand(1, 3, size, size, generator=generator).to(check.device) for _ in range(3))
    targets = style_targets(network, style, config.style_layers)
    whole = Objective(network, weights, content_targets(network, content, config.content_layers), targets)
    tiled = TiledObjective(network, weights, content, targets, core, cache_content=True)

    def compare() -> dict:
        whole_terms, whole_grad = whole.value_and_grad(image)
        tiled_terms, tiled_grad = tiled.value_and_grad(image)
        error = float((tiled_grad - whole_grad).abs().max() / whole_grad.abs().max())
        return {"relative_gradient_error": error, "within_1e-4": error < 1e-4,
                "relative_loss_difference": relative_difference(tiled_terms.total, whole_terms.total),
                "relative_content_difference": relative_difference(tiled_terms.content, whole_terms.content),
                "relative_style_difference": relative_difference(tiled_terms.style, whole_terms.style)}

    result = {"size": size, "core": core, "halo": tiled.context, "windows": len(tiled.tiles),
              "default_math": compare()}
    if is_cuda(check.device):
        # cuDNN convolutions use TF32 by default, and each window size may pick another algorithm,
        # so the default figure mixes TF32 rounding into the tiling's own error: separate them.
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            result["tf32_off"] = compare()
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    return result


# --- 3 -----------------------------------------------------------------------------------------

def sigkill_resume(check: "Check") -> dict:
    """A render killed mid-level and resumed must write the same file as one never interrupted."""
    s = check.sizes
    generator = torch.Generator().manual_seed(3)
    # Progress is saved every `checkpoint` evaluations (at the L-BFGS iteration's end), so the kill,
    # before the level's last evaluation, lands after a mid-level checkpoint and the resume really
    # continues the level rather than starting it again (resumed_mid_level says whether it did).
    options = ["--target-size", s["resume_target"], "--iterations", s["resume_iterations"],
               "--first-level-factor", 1, "--checkpoint-every", s["resume_checkpoint"]]
    kill = f"evaluation:{s['resume_kill']}"
    variants = {
        "plain": {"CUBLAS_WORKSPACE_CONFIG": None, "LARGESTYLE_DETERMINISTIC": None},
        "deterministic": {"CUBLAS_WORKSPACE_CONFIG": ":4096:8", "LARGESTYLE_DETERMINISTIC": "1"},
    }
    result = {"options": " ".join(map(str, options)), "kill_at": kill,
              "package_reads_LARGESTYLE_DETERMINISTIC": package_mentions("LARGESTYLE_DETERMINISTIC")}
    with tempfile.TemporaryDirectory(prefix="largestyle-device-check-") as folder:
        folder = Path(folder)
        content, style = folder / "content.png", folder / "style.png"
        save_image(smooth_image(*s["resume_content"], generator), content)
        save_image(smooth_image(s["style_side"], s["style_side"], generator), style)
        for name, env in variants.items():
            try:
                result[name] = kill_and_resume(check, folder / name, content, style, options, env, kill)
            except Exception as exc:  # one variant failing leaves the other's result
                result[name] = error_entry(exc)
        plain, deterministic = (folder / name / "uninterrupted.png" for name in variants)
        if plain.exists() and deterministic.exists():
            result["plain_vs_deterministic_uninterrupted"] = (
                {"identical": True} if plain.read_bytes() == deterministic.read_bytes()
                else {"identical": False, **pixel_difference(plain, deterministic)})
    return result


def kill_and_resume(check: "Check", folder: Path, content: Path, style: Path, options, env: dict,
                    kill: str) -> dict:
    folder.mkdir()
    whole, resumed = folder / "uninterrupted.png", folder / "resumed.png"

    def render(output: Path, extra_env: dict) -> dict:
        return cli_render(content, style, output, check.device, options,
                          {**env, "LARGESTYLE_KILL_AT": None, **extra_env}, SUBPROCESS_TIMEOUT)

    runs = {"uninterrupted": render(whole, {}), "killed": render(resumed, {"LARGESTYLE_KILL_AT": kill}),
            "resumed": render(resumed, {})}
    resume = job_summary(resumed)
    result = {"runs": runs, "killed_by_sigkill": runs["killed"]["returncode"] == -signal.SIGKILL,
              # Whether the resume continued the level from a checkpoint rather than starting it again.
              "resumed_mid_level": resume.get("restored_evaluations", 0) > 0,
              "resume": resume, "uninterrupted": job_summary(whole)}
    if whole.exists() and resumed.exists():
        identical = whole.read_bytes() == resumed.read_bytes()
        result["byte_identical"] = identical
        if not identical:
            result.update(pixel_difference(whole, resumed))
    else:
        result["byte_identical"] = None
        result["missing_output"] = [path.name for path in (whole, resumed) if not path.exists()]
    return result


def package_mentions(text: str) -> bool:
    """Whether any of the package's source files mentions ``text`` (e.g. reads an environment variable)."""
    package = Path(largestyle.__file__).parent
    return any(text in path.read_text(errors="replace") for path in package.rglob("*.py"))


# --- 4 -----------------------------------------------------------------------------------------

def memory_model(check: "Check") -> dict:
    """Measured peak growth of one whole evaluation against the memory model's estimates."""
    if not is_cuda(check.device):
        return {"skipped": "needs CUDA (peak allocation is measured with torch.cuda.max_memory_allocated)"}
    engine = Engine(random_config(check.device))
    memory = engine.memory
    result = {
        "model_bytes_per_pixel": {"activations_saved": memory.activation_per_pixel,
                                  "backward_transients": memory.transient_per_pixel,
                                  "image_buffers_incl_lbfgs_history": memory.image_per_pixel,
                                  "total": memory.per_pixel},
        "network_bytes": memory.fixed,
        "note": ("measured = peak allocated minus allocated before the image was made (network and style "
                 "targets already resident); it holds the image and content (12 bytes per pixel each), the "
                 "content targets, activations, backward temporaries and the gradient. "
                 "estimate_activations = pixels x (activations_saved + backward_transients); estimate_optimise "
                 "= optimise_bytes, which adds the network and the L-BFGS history that one evaluation does not "
                 "allocate."),
        "fp32": peak_per_size(check, engine, memory),
    }
    try:
        bf16 = Engine(random_config(check.device, precision="bf16"))
        result["bf16"] = peak_per_size(check, bf16, memory)
    except Exception as exc:
        result["bf16"] = error_entry(exc)
    return result


def peak_per_size(check: "Check", engine: Engine, memory) -> dict:
    config, network = engine.config, engine.network
    generator = torch.Generator().manual_seed(4)
    side = check.sizes["style_side"]
    targets = style_targets(network, torch.rand(1, 3, side, side, generator=generator).to(check.device),
                            config.style_layers)
    rows = {}
    for size in check.sizes["memory_sizes"]:
        measured = measure_peak(check.device, lambda: one_evaluation(network, config, targets, size, check.device))
        activations = size * size * (memory.activation_per_pixel + memory.transient_per_pixel)
        optimise = memory.optimise_bytes(size, size)
        rows[str(size)] = {"measured_bytes": measured, "measured_bytes_per_pixel": measured / size ** 2,
                           "estimate_activations_bytes": int(activations),
                           "measured_over_estimate_activations": measured / activations,
                           "estimate_optimise_bytes": optimise, "measured_over_estimate_optimise": measured / optimise}
    return rows


def one_evaluation(network, config, targets, size: int, device: str) -> None:
    """Build a whole-level objective for a random size x size content and evaluate it once."""
    image, content = (torch.rand(1, 3, size, size, device=device) for _ in range(2))
    Objective(network, resolve_loss_weights(config), content_targets(network, content, config.content_layers),
              targets).value_and_grad(image)


def measure_peak(device: str, function) -> int:
    """Peak bytes allocated while ``function`` runs, above what was allocated before it."""
    free_memory(device)
    synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    function()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


# --- 5 -----------------------------------------------------------------------------------------

def evaluation_over_bare(check: "Check") -> dict:
    """Seconds of one loss evaluation over a bare forward+backward, interleaved, fp32 and bf16."""
    sys.path.insert(0, str(HERE))  # bench/ is not a package
    from bench_evaluation import bare_pass, make_objective, theoretical_ratio

    result = {"rounds": check.sizes["rounds"],
              "note": "fp32 and bf16 run one after the other, not interleaved; within each, bare and evaluation "
                      "alternate and the ratio is the median of the per-round ratios"}
    for precision in ("fp32", "bf16"):
        try:  # bf16 alone may fail (e.g. an option the package does not have yet)
            options = {} if precision == "fp32" else {"precision": "bf16"}
            config = random_config(check.device, **options)
            result[precision] = time_evaluations(check, config, bare_pass, make_objective, theoretical_ratio)
        except Exception as exc:
            result[precision] = error_entry(exc)
        free_memory(check.device)
    fp32, bf16 = result.get("fp32", {}), result.get("bf16", {})
    result["bf16_speedup"] = {size: {"bare": fp32[size]["bare_forward_backward_s"] / row["bare_forward_backward_s"],
                                     "evaluation": fp32[size]["evaluation_s"] / row["evaluation_s"]}
                              for size, row in bf16.items() if isinstance(row, dict) and size in fp32}
    return result


def time_evaluations(check: "Check", config, bare_pass, make_objective, theoretical_ratio) -> dict:
    network = Engine(config).network
    rows = {"compute_dtype": str(network.compute_dtype or "parameters' own (float32)")}
    for size in check.sizes["bare_sizes"]:
        rows[str(size)] = time_one_size(check.device, network, config, size, check.sizes["rounds"], bare_pass,
                                        make_objective)
        rows[str(size)]["theory_evaluation_over_bare"] = theoretical_ratio(config, size)
        free_memory(check.device)  # this size's tensors are gone with the call
    return rows


def time_one_size(device: str, network, config, size: int, rounds: int, bare_pass, make_objective) -> dict:
    generator = torch.Generator().manual_seed(5)
    image = torch.rand(1, 3, size, size, generator=generator).to(device)
    side = min(size, 1024)  # the Gram targets' cost does not depend on the style image's size
    objective = make_objective(network, config, image, torch.rand(1, 3, side, side, generator=generator).to(device))
    bare = lambda: bare_pass(network, image)
    evaluation = lambda: objective.value_and_grad(image)
    timed(bare, device), timed(evaluation, device)  # warm-up (cuDNN's algorithm choice, allocator)
    bare_times, eval_times = [], []
    for _ in range(rounds):  # interleaved, so drifts in clock speed hit both alike
        bare_times.append(timed(bare, device))
        eval_times.append(timed(evaluation, device))
    return {"bare_forward_backward_s": statistics.median(bare_times),
            "evaluation_s": statistics.median(eval_times),
            "evaluation_over_bare": statistics.median(e / b for e, b in zip(eval_times, bare_times))}


# --- 6 -----------------------------------------------------------------------------------------

def largest_whole_level(check: "Check") -> dict:
    """The largest square level the memory model lets run whole, then one evaluation at it to confirm."""
    # On the CPU (--quick) a small budget stands in for the machine's RAM, so the evaluation stays quick.
    options = {"max_memory": "300MB"} if check.quick and not is_cuda(check.device) else {}
    engine = Engine(random_config(check.device, **options))
    memory, budget = engine.memory, engine.budgets.device
    side = largest_fitting_side(lambda s: memory.optimise_bytes(s, s) <= budget)
    if side is None:
        return {"error": f"not even a 16 px level fits the budget of {budget} bytes"}
    result = {"budget_bytes": budget, "side": side, "estimated_bytes": memory.optimise_bytes(side, side),
              **widest_activation(side, side),
              "note": "the run allocates a stand-in for the L-BFGS history and the other image buffers, so its "
                      "peak is comparable with optimise_bytes"}
    config, network = engine.config, engine.network
    generator = torch.Generator().manual_seed(6)
    style = torch.rand(1, 3, check.sizes["style_side"], check.sizes["style_side"], generator=generator)
    targets = style_targets(network, style.to(check.device), config.style_layers)
    image_bytes = side * side * 3 * 4

    def optimise_once():
        image, content = (torch.rand(1, 3, side, side, device=check.device) for _ in range(2))
        # The buffers optimise_bytes counts besides the image, the content and the gradient.
        history = torch.empty(max(0, memory.buffer_bytes(side, side) - 3 * image_bytes), dtype=torch.uint8,
                              device=check.device)
        objective = Objective(network, resolve_loss_weights(config),
                              content_targets(network, content, config.content_layers), targets)
        result["seconds_evaluation"] = timed(lambda: objective.value_and_grad(image), check.device)
        del history

    try:
        if is_cuda(check.device):
            peak = measure_peak(check.device, optimise_once)
            result.update(measured_peak_bytes=peak + memory.fixed, measured_over_estimate=(
                (peak + memory.fixed) / result["estimated_bytes"]), within_budget=peak + memory.fixed <= budget)
        else:
            optimise_once()
            result["measured_peak_bytes"] = None  # no allocator statistics on the CPU
        result["fits"] = True
    except Exception as exc:  # keep the side and estimate beside the failure
        result.update(fits=False if is_out_of_memory(exc) else None, **error_entry(exc))
    return result


def widest_activation(height: int, width: int) -> dict:
    """Elements of the network's widest activation (64 channels at full size) for an input of this size.

    cuDNN and many CUDA kernels index with 32 bits; PyTorch splits larger inputs only along the
    batch, which is 1 here, so past 2^31 - 1 elements a convolution may fail or take a slow path.
    """
    elements = 64 * height * width
    return {"widest_activation_elements": elements, "over_int32": elements > 2 ** 31 - 1}


def largest_fitting_side(fits) -> int | None:
    """Largest multiple of 16 for which ``fits(side)`` holds, by doubling then bisection (fits is monotone)."""
    if not fits(16):
        return None
    low, high = 16, 32
    while fits(high):
        low, high = high, high * 2
    while high - low > 16:  # low fits, high does not
        middle = (low + high) // 2 // 16 * 16
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


# --- 7 -----------------------------------------------------------------------------------------

def exact_tiled_8192(check: "Check") -> dict:
    """Seconds per exact-tiled evaluation of a large level, with the core and placement the planner picks."""
    size = check.sizes["tiled_size"]
    config = random_config(check.device, target_size=size)
    if check.quick and not is_cuda(check.device):
        # The CPU's budget would take 512 px whole: give it one that fits exact tiling with cores
        # of half the level, as a GPU's budget does at 8192 px.
        context = halo(config.style_layers + config.content_layers)
        room = Engine(config).memory.exact_bytes(size, size, size // 2, context) + 2 ** 20
        config = random_config(check.device, target_size=size, max_memory=room)
    engine = Engine(config)
    levels, budget = engine.plan(size, size)
    level = levels[-1]
    if level.mode == "exact":
        core, cache, on_host, source = level.tile_size, level.cache_content, level.on_host, "plan"
    else:  # the budget took it whole, or blend: time exact tiling at the core it would choose anyway
        layout = engine.planner.exact_layout(size, size, allow_mapped=False)
        if layout is None:
            return {"error": f"the plan chose {level.mode} and no exact layout fits the budget of {budget} bytes"}
        core, cache, on_host = layout.core, layout.cache_content, layout.on_host
        source = f"planner.exact_layout (the plan chose {level.mode})"
    network = engine.network
    # With its buffers on the host, the level's image stays in RAM and only windows go to the GPU.
    home = "cpu" if on_host else check.device
    generator = torch.Generator().manual_seed(7)
    image, content = (torch.rand(1, 3, size, size, generator=generator).to(home) for _ in range(2))
    style = torch.rand(1, 3, check.sizes["style_side"], check.sizes["style_side"], generator=generator)
    targets = style_targets(network, style.to(check.device), config.style_layers)
    result = {"size": size, "core": core, "cache_content": cache, "on_host": on_host, "core_from": source,
              "budget_bytes": budget, "grid": [-(-size // core)] * 2, "planned_mode": level.mode}
    # Building computes (and, with cache_content, keeps) every core's content targets.
    objective, result["seconds_targets"] = timed_call(lambda: TiledObjective(
        network, resolve_loss_weights(config), content, targets, core, cache_content=cache), check.device)
    result["windows"] = len(objective.tiles)
    top, left, bottom, right = max((tile.window for tile in objective.tiles),
                                   key=lambda window: (window[2] - window[0]) * (window[3] - window[1]))
    result.update(widest_activation(bottom - top, right - left))
    result["seconds_per_evaluation"] = [timed(lambda: objective.value_and_grad(image), check.device)
                                        for _ in range(check.sizes["tiled_evaluations"])]
    return result


# --- 8 -----------------------------------------------------------------------------------------

def render_4096(check: "Check") -> dict:
    """Wall time of a default large CLI render, fp32 and bf16, and how far their outputs differ."""
    s = check.sizes
    target = s["render_target"]
    # Default options at full size; --quick caps the evaluations so that the CPU gets through.
    extra = [item for name, value in s["render_options"].items() for item in (f"--{name.replace('_', '-')}", value)]
    estimate = render_estimate(check, target)
    spent = time.perf_counter() - check.started
    if "seconds" not in estimate:
        return {"skipped": "no timings to estimate the render from", "estimate": estimate}
    if spent + estimate["seconds"] > check.budget:
        return {"skipped": f"{spent:.0f} s spent + about {estimate['seconds']:.0f} s estimated for both renders "
                           f"exceeds --budget-seconds {check.budget:.0f}", "estimate": estimate}
    generator = torch.Generator().manual_seed(8)
    result = {"target_size": target, "content": "1024x768 smooth random", "style": "512x512 random",
              "extra_options": " ".join(map(str, extra)), "estimate": estimate}
    with tempfile.TemporaryDirectory(prefix="largestyle-device-check-") as folder:
        folder = Path(folder)
        content, style = folder / "content.png", folder / "style.png"
        save_image(smooth_image(768, 1024, generator, cells=32), content)
        save_image(torch.rand(3, 512, 512, generator=generator), style)
        outputs = {precision: folder / f"{precision}.png" for precision in ("fp32", "bf16")}
        for precision, output in outputs.items():
            left = check.budget - (time.perf_counter() - check.started)  # never run past the budget
            if left < 5:
                result[precision] = {"skipped": f"--budget-seconds {check.budget:.0f} spent"}
                continue
            result[precision] = cli_render(content, style, output, check.device,
                                           ["--target-size", target, "--precision", precision, *extra], {}, left)
            result[precision]["job"] = job_summary(output)
        if all(result[p].get("returncode") == 0 for p in outputs):
            result["bf16_speedup_wall"] = result["fp32"]["wall_s"] / result["bf16"]["wall_s"]
            fp32_s, bf16_s = (result[p]["job"].get("render_s") for p in outputs)
            if fp32_s and bf16_s:
                result["bf16_speedup_inside_render"] = fp32_s / bf16_s  # without the processes' start
            result.update(pixel_difference(outputs["fp32"], outputs["bf16"]))
    return result


def render_estimate(check: "Check", target: int) -> dict:
    """Seconds both renders should take, from this run's own evaluation timings and the render's plan.

    Each level costs its planned work (pixels through the network over all its evaluations,
    tiles' halos included) at the seconds per pixel of the largest evaluation measured, but no
    less per evaluation than at the smallest size measured (small levels are bound by kernel
    launches), times RENDER_OVERHEAD for the optimiser and checkpoints, plus a process's start
    as section 3 measured it. Each level's evaluation cap is assumed (--tolerance usually stops
    earlier); bf16 without timings of its own is bounded by fp32's.
    """
    config = random_config(check.device, target_size=target, **check.sizes["render_options"])
    levels, _ = Engine(config).plan(768, 1024)
    startup = startup_seconds(check)
    result = {"levels": [f"{level.width}x{level.height} {level.mode} x{level.total_evaluations}" for level in levels],
              "startup_s": startup}
    total = 0.0
    for precision in ("fp32", "bf16"):
        timings, source = evaluation_timings(check, precision), precision
        if not timings:
            timings, source = evaluation_timings(check, "fp32"), "fp32 (no bf16 timings)"
        if not timings:
            return {**result, "how": "no evaluation timings (sections 5 and 6 failed or were skipped)"}
        largest, smallest = max(timings), min(timings)
        per_pixel, floor = timings[largest] / largest ** 2, timings[smallest]
        evaluations = sum(max(level.work * per_pixel, level.total_evaluations * floor) for level in levels)
        result[f"{precision}_s"] = evaluations * RENDER_OVERHEAD + startup
        result[f"{precision}_from"] = (f"{source}: {per_pixel:.3g} s/px (evaluation at {largest} px), at least "
                                       f"{floor:.3g} s per evaluation (at {smallest} px)")
        total += result[f"{precision}_s"]
    result["seconds"] = total
    result["how"] = (f"per level max(planned work x s/px, evaluations x s per evaluation), summed, x{RENDER_OVERHEAD} "
                     f"for the optimiser and checkpoints, + start-up; per precision, both added")
    return result


def evaluation_timings(check: "Check", precision: str) -> dict[int, float]:
    """Seconds per whole evaluation by square side, from section 5 (or, for fp32, section 6)."""
    rows = check.results.get("evaluation_over_bare", {}).get(precision, {})
    timings = {int(size): row["evaluation_s"] for size, row in rows.items()
               if isinstance(row, dict) and "evaluation_s" in row}
    whole = check.results.get("largest_whole_level", {})
    if not timings and precision == "fp32" and "seconds_evaluation" in whole:
        timings = {whole["side"]: whole["seconds_evaluation"]}
    return timings


def startup_seconds(check: "Check") -> float:
    """A CLI process's seconds outside its render (imports, CUDA context, writing), as section 3 saw them."""
    resume = check.results.get("sigkill_resume", {})
    seen = [variant["runs"]["uninterrupted"]["wall_s"] - variant["uninterrupted"]["render_s"]
            for variant in resume.values()
            if isinstance(variant, dict) and variant.get("uninterrupted", {}).get("render_s") is not None]
    return max(seen) if seen else STARTUP_SECONDS


# --- running it ----------------------------------------------------------------------------------

SECTIONS = (render_end_to_end, exact_tiling_gradient, sigkill_resume, memory_model, evaluation_over_bare,
            largest_whole_level, exact_tiled_8192, render_4096)


class Check:
    """The run's settings and the results so far (section 8 estimates from section 5's)."""

    def __init__(self, device: str, quick: bool, budget: float):
        self.device, self.quick, self.budget = device, quick, budget
        self.sizes = SIZES["quick" if quick else "full"]
        self.started = time.perf_counter()
        self.results: dict = {}


def error_entry(exc: BaseException) -> dict:
    return {"error": f"{type(exc).__name__}: {exc}"[:1000],
            "where": traceback.format_exception(exc)[-2].strip()[:500] if exc.__traceback__ else None}


def run_section(check: Check, section) -> dict:
    name = section.__name__
    spent = time.perf_counter() - check.started
    if spent > check.budget:
        return {"skipped": f"--budget-seconds {check.budget:.0f} already spent ({spent:.0f} s)"}
    log(f"{name} ({spent:.0f} s so far)")
    start = time.perf_counter()
    try:
        result = section(check)
    except Exception as exc:  # each section on its own: record the failure, go on
        result = error_entry(exc)
    try:
        free_memory(check.device)
    except Exception as exc:  # a broken CUDA context: the next sections will say so too
        result["cleanup_error"] = f"{type(exc).__name__}: {exc}"[:500]
    result["seconds"] = time.perf_counter() - start
    return result


def environment(device: str) -> dict:
    info = {"torch": torch.__version__, "largestyle": largestyle.__version__, "python": platform.python_version(),
            "device": device, "threads": torch.get_num_threads(), "machine": platform.machine()}
    try:
        if is_cuda(device):
            properties = torch.cuda.get_device_properties(device)
            free, total = torch.cuda.mem_get_info(device)
            info.update(device_name=torch.cuda.get_device_name(device),
                        capability=list(torch.cuda.get_device_capability(device)),
                        cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                        memory_total_gib=total / GIB, memory_free_gib=free / GIB,
                        multiprocessors=properties.multi_processor_count,
                        cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                        matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
                        cudnn_benchmark=torch.backends.cudnn.benchmark,
                        bf16_supported=torch.cuda.is_bf16_supported())
        else:
            info["device_name"] = platform.processor() or platform.machine()
    except Exception as exc:  # e.g. --device cuda where there is none: the sections will say so too
        info["device_error"] = f"{type(exc).__name__}: {exc}"
    return info


def plain_json(value):
    """NaN and infinities as strings, so the document stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test that runs on a CPU")
    parser.add_argument("--budget-seconds", type=float, default=450.0,
                        help="skip render_4096 (and any section not yet started) past this many seconds")
    parser.add_argument("--sections", help="comma-separated section names to run (default: all)")
    args = parser.parse_args()
    chosen = set(args.sections.split(",")) if args.sections else {section.__name__ for section in SECTIONS}
    unknown = chosen - {section.__name__ for section in SECTIONS}
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    check = Check(args.device, args.quick, args.budget_seconds)
    report = {"environment": {**environment(args.device), "quick": args.quick, "budget_seconds": args.budget_seconds}}
    for section in SECTIONS:
        if section.__name__ in chosen:
            check.results[section.__name__] = report[section.__name__] = run_section(check, section)
    report["total_seconds"] = time.perf_counter() - check.started
    print(json.dumps(plain_json(report), indent=2, default=str))


if __name__ == "__main__":
    main()
