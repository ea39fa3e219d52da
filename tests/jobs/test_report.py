"""The HTML report of a job directory and the batch index, built from hand-written job files."""

import json
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from largestyle.jobs.history import read_events, summarise_events
from largestyle.jobs.report import write_index, write_report

SHA = "ab" * 32


def png(path: Path, size=(24, 16), seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def loss(total, content=None):
    content = total / 4 if content is None else content
    return {"total": total, "content": content, "style": total / 2, "tv": total / 4}


def level(index, mode, height, width, **extra):
    return {"index": index, "height": height, "width": width, "mode": mode, "evaluations": 3,
            "estimated_bytes": 2 ** 20, "work": 100, "tile_size": extra.pop("tile_size", None),
            "grid": extra.pop("grid", [1, 1]), "tiles_per_pass": extra.pop("tiles_per_pass", [1]),
            "tiled_bytes": extra.pop("tiled_bytes", None), "on_host": False, "cache_content": True}


LEVELS = [level(0, "whole", 8, 12), level(1, "exact", 16, 24, tile_size=8, grid=[2, 3], tiled_bytes=3 * 2 ** 20),
          level(2, "blend", 32, 48, tile_size=16, grid=[2, 3], tiles_per_pass=[6, 6], tiled_bytes=2 ** 21)]


def events():
    """A render of three levels (whole, exact, blend) that was interrupted and resumed at the last."""
    t = 1000.0
    lines = [{"event": "RenderStarted", "time": t, "levels": LEVELS, "device": "cpu", "budget_bytes": 2 ** 30,
              "weights": "random", "weights_path": None, "weights_sha256": None,
              "weights_chosen_by": "no weights file found", "loss_weights": [1.0, 1.0, 10.0]},
             {"event": "Notice", "time": t, "kind": "random-weights", "message": "random network <in use>"},
             {"event": "Info", "time": t, "kind": "output-size", "message": "print 24x36in (crop): 10800 x 7200 px"}]
    for index, lv in enumerate(LEVELS[:2]):
        lines.append({"event": "LevelStarted", "time": t, "level": lv, "count": 3})
        for i in range(1, 4):
            lines.append({"event": "Evaluation", "time": t, "level": index, "evaluation": i, "budget": 3,
                          "loss": loss(100.0 / i, content=0.0 if i == 1 else None), "pixels": 96,
                          "pass_index": 0, "tile": 0})
        lines.append({"event": "OptimisationFinished", "time": t, "level": index, "evaluations": 3, "skipped": 0,
                      "loss": loss(30.0), "pixels": 96, "pass_index": 0, "tile": 0})
        lines.append({"event": "LevelFinished", "time": t, "level": index, "seconds": 1.5 + index})
    lines.append({"event": "SomethingNew", "time": t, "level": 7})
    lines.append({"event": "Resumed", "time": t, "level": 2, "evaluations": 6})
    lines.append({"event": "LevelStarted", "time": t, "level": LEVELS[2], "count": 3})
    for tile in range(2):
        lines.append({"event": "TileStarted", "time": t, "level": 2, "pass_index": 0, "passes": 2,
                      "tile": tile, "tiles": 6})
        for i in range(1, 3):
            lines.append({"event": "Evaluation", "time": t, "level": 2, "evaluation": i, "budget": 3,
                          "loss": loss(50.0 / i), "pixels": 256, "pass_index": 0, "tile": tile})
        lines.append({"event": "OptimisationFinished", "time": t, "level": 2, "evaluations": 2, "skipped": 1,
                      "loss": loss(20.0 + tile), "pixels": 256, "pass_index": 0, "tile": tile})
    lines.append({"event": "LevelFinished", "time": t, "level": 2, "seconds": 90.0})
    lines.append({"event": "RenderFinished", "time": t, "seconds": 95.0, "evaluations": 10})
    return "".join(json.dumps(line) + "\n" for line in lines) + '{"event": "Evaluation", "ti'


def make_job(root: Path, *, with_events=True, setting="lbfgs", content_exists=True) -> Path:
    job = root / "job"
    job.mkdir()
    content = png(root / "inputs" / "cat.jpg", (40, 30), seed=1) if content_exists else root / "gone" / "cat.jpg"
    style = png(root / "inputs" / "style.png", (30, 30), seed=2)
    (job / "job.json").write_text(json.dumps({
        "version": "0.1.0", "created": "2026-11-22T10:00:00",
        "content": {"path": str(content), "sha256": SHA}, "style": {"path": str(style), "sha256": "cd" * 32},
        "output": str(root / "out" / "cat.png"),
        "settings": {"target_size": 1234, "optimizer": setting, "tile_size": None},
        "weights": {"flavour": "random", "sha256": None, "path": None}}))
    if with_events:
        (job / "events.jsonl").write_text(events())
        for number, (height, width) in enumerate([(8, 12), (16, 24), (32, 48)], 1):
            png(job / "levels" / f"level-{number}.png", (width, height), seed=number)
        png(job / "output.png", (48, 32), seed=9)
        (job / "status.json").write_text(json.dumps({
            "state": "finished", "percent": 100.0, "level": 3, "levels": 3, "tile": None, "eta_seconds": None,
            "last_loss": loss(20.0), "evaluations": 10, "updated": "2026-11-22T10:02:00", "pid": 1,
            "message": None, "output": str(root / "out" / "cat.png")}))
    return job


def links(page: Path) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page.read_text(encoding="utf-8"))


def assert_links_exist(page: Path) -> None:
    for link in links(page):
        assert not re.match(r"[a-z]+:|/", link), f"{link} is not relative"
        assert (page.parent / unquote(link)).is_file(), f"{link} is missing"


def test_events_skip_truncated_and_unknown_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(events())
    history = summarise_events(read_events(path))
    assert history.evaluations == 10  # 3 + 3 + 2 tiles x 2; the cut-off last line is not counted
    assert [index for _, index in history.boundaries] == [1, 2] and history.resumes == [6]
    assert history.level_evaluations == {0: 3, 1: 3, 2: 4}
    assert history.notices == [("random-weights", "random network <in use>")]
    assert history.infos == ["print 24x36in (crop): 10800 x 7200 px"]
    # Whole and exact levels plot every evaluation, blend levels each tile's final loss.
    assert [x for x, _ in history.points["total"]] == [1, 2, 3, 4, 5, 6, 8, 10]
    assert history.points["total"][-2:] == [(8, 20.0), (10, 21.0)]
    assert 1 not in [x for x, _ in history.points["content"]]  # a zero cannot go on a log axis
    assert read_events(tmp_path / "missing.jsonl") == []


def test_report_of_a_finished_render(tmp_path):
    job = make_job(tmp_path)
    page = write_report(job)
    assert page == job / "report.html"
    text = page.read_text(encoding="utf-8")
    assert "<h1>cat.png: finished</h1>" in text
    assert_links_exist(page)
    assert {"output.png", "report/output.jpg", "report/loss.png"} <= set(links(page))
    for number in (1, 2, 3):
        row = re.search(rf'<tr id="level-{number}">(.*?)</tr>', text, re.S)
        assert row and f'href="levels/level-{number}.png"' in row.group(1)
    assert "exact: 8 px cores, 2x3 grid" in text and "blend: 16 px tiles, 2x3 grid, 2 passes" in text
    assert "1m30s" in text and "1m35s" in text  # the blend level's and the whole render's time
    with Image.open(job / "report" / "loss.png") as plot:
        assert plot.format == "PNG" and plot.width > 100
        plot.verify()
    with Image.open(job / "report" / f"content-{SHA[:12]}.jpg") as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) <= 512
    assert "1234" in text and "target_size" in text
    assert SHA[:12] in text and SHA[:13] not in text
    assert "random network &lt;in use&gt;" in text
    assert "<h2>Inputs and output</h2>" in text and "10800 x 7200 px" in text
    assert "<script" not in text and "http" not in text
    assert not list(job.rglob("*.tmp"))  # every file went through a completed atomic write


def test_settings_are_escaped(tmp_path):
    text = write_report(make_job(tmp_path, setting='<b>&"x"</b>')).read_text(encoding="utf-8")
    assert "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in text and "<b>&" not in text


def test_missing_input_is_reported(tmp_path):
    job = make_job(tmp_path, content_exists=False)
    page = write_report(job)
    text = page.read_text(encoding="utf-8")
    assert "missing" in text and str(tmp_path / "gone" / "cat.jpg") in text
    assert not (job / "report" / f"content-{SHA[:12]}.jpg").exists()
    assert any(link.startswith("report/style-") for link in links(page))
    assert_links_exist(page)


def test_report_keeps_input_thumbnails_after_the_inputs_move(tmp_path):
    job = make_job(tmp_path)
    write_report(job)
    (tmp_path / "inputs" / "cat.jpg").rename(tmp_path / "cat-moved.jpg")
    page = write_report(job)
    assert f"report/content-{SHA[:12]}.jpg" in links(page)
    assert "no longer at this path" in page.read_text(encoding="utf-8")
    assert_links_exist(page)


def test_report_without_events_or_status(tmp_path):
    job = make_job(tmp_path, with_events=False)
    page = write_report(job)
    text = page.read_text(encoding="utf-8")
    assert "cat.png: unknown" in text and "No evaluations recorded" in text
    assert not (job / "report" / "loss.png").exists()
    assert "No final image" in text and "No level finished" in text
    assert_links_exist(page)


def test_report_of_a_failed_render_and_a_moved_job_dir(tmp_path):
    job = make_job(tmp_path)
    status = json.loads((job / "status.json").read_text())
    (job / "status.json").write_text(json.dumps({**status, "state": "failed", "message": "out of memory <GPU>"}))
    (job / "output.png").unlink()
    write_report(job)
    moved = job.rename(tmp_path / "elsewhere")
    text = (moved / "report.html").read_text(encoding="utf-8")
    assert "cat.png: failed" in text and "out of memory &lt;GPU&gt;" in text
    assert_links_exist(moved / "report.html")


def test_report_without_job_json(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    text = write_report(job).read_text(encoding="utf-8")
    assert "job.json is missing" in text


def test_index_links_reports_and_shows_failures(tmp_path):
    done = make_job(tmp_path)
    write_report(done)
    batch = tmp_path / "batch"
    batch.mkdir()
    jobs = [
        {"name": "cat", "status": "finished", "seconds": 95.0, "output": str(done / "output.png"),
         "job_dir": str(done), "message": None},
        {"name": "dog & co", "status": "failed", "seconds": 3.2, "output": None, "job_dir": str(tmp_path / "none"),
         "message": "cannot read style image <x>"},
        {"name": "bird", "status": "skipped", "seconds": None, "output": None, "job_dir": None,
         "message": "output exists"},
    ]
    page = write_index(batch / "index.html", jobs)
    text = page.read_text(encoding="utf-8")
    assert_links_exist(page)
    assert "../job/report.html" in links(page)
    assert len(list((batch / "index-thumbs").glob("*.jpg"))) == 1
    assert "cannot read style image &lt;x&gt;" in text and "dog &amp; co" in text
    assert text.count(">report</a>") == 1
    assert "1 finished, 1 failed, 1 skipped" in text


@pytest.mark.parametrize("mode", ["I;16", "RGBA", "P"])
def test_thumbnails_of_unusual_modes(tmp_path, mode):
    job = make_job(tmp_path)
    image = Image.new(mode, (20, 10))
    image.save(job / "levels" / "level-1.png")
    write_report(job)
    with Image.open(job / "report" / "level-1.jpg") as thumb:
        assert thumb.mode == "RGB" and thumb.size == (20, 10)


def test_levels_say_whether_they_converged_or_ran_to_the_cap():
    from largestyle.jobs.report import _evaluations

    events = [
        {"event": "OptimisationFinished", "level": 0, "evaluations": 40, "skipped": 20},
        {"event": "OptimisationFinished", "level": 1, "evaluations": 30, "skipped": 0},
        *({"event": "OptimisationFinished", "level": 2, "evaluations": 5, "skipped": skipped} for skipped in (1, 0, 2)),
    ]
    history = summarise_events(events)
    assert [_evaluations(history, index) for index in range(4)] == [
        "40 (converged)", "30 (cap)", "15 (2 of 3 converged)", "?"]
