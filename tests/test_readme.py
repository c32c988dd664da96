"""The README works as written: its commands parse and resolve (those on data a test cannot have are checked by
the CLI up to the point of running), its Python runs on digits, and every link between it and docs/ resolves."""
import re
import shlex
from pathlib import Path

import pytest
import torch

from lowdata.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def readme_commands() -> list[list[str]]:
    """Each `lowdata ...` line of the README's bash blocks (continuations joined, comments dropped), but those
    with a `...` placeholder, which stand for the line above."""
    return [argv for block in code_blocks("bash") for argv in readme_commands_of(block)]


@pytest.fixture
def resolved(monkeypatch):
    """Every command the CLI would run is resolved to its settings (train and pretrain settings checked as a run
    checks them, study recipes looked up) and recorded, not run."""
    import lowdata.api as api
    import lowdata.data.check as check
    import lowdata.study.report as report
    from lowdata.config import PretrainConfig, TrainConfig
    from lowdata.objectives import build_config as build
    from lowdata.runs.export import FORMATS
    from lowdata.study.recipes import load_recipes, pick

    calls = []

    def record(name, check_settings=None):
        def stand_in(*args, **settings):
            if check_settings:
                check_settings(settings)
            calls.append((name, args, settings))
            return {}
        return stand_in

    def study_settings(options):
        pick(load_recipes(options.get("recipes_file")), options["recipes"] or [])

    settings_of = {"train": TrainConfig, "pretrain": PretrainConfig}
    for name, cls in settings_of.items():
        monkeypatch.setattr(api, name, record(name, lambda s, cls=cls: build(cls, {k: v for k, v in s.items()
                                                                                  if k != "resume"})))
    monkeypatch.setattr(api, "run_study", record("study", study_settings))
    evaluated = {"test_acc": 0.5, "test_top5_acc": 0.9, "test_images": 4, "model": "m", "dataset": "d",
                 "per_class_acc": {"cat": 0.5, "dog": 0.5}, "confusion": [[1, 1], [1, 1]]}
    monkeypatch.setattr(api, "evaluate_run", lambda *a, **k: calls.append(("eval", a, k)) or evaluated)
    chosen = {"selected": 100, "candidates": 500, "strategy": "typiclust", "features": "pca", "feature_dims": 50,
              "already_labelled": 0, "out": "to-label.csv", "features_report": []}
    monkeypatch.setattr("lowdata.selection.select.select_images",
                        lambda *a, **k: calls.append(("select", a, k)) or chosen)
    one = [{"image": "a.jpg", "classes": ["cat", "dog", "frog"], "probabilities": [0.5, 0.3, 0.2]}]
    monkeypatch.setattr(api, "predict", lambda *a, **k: calls.append(("predict", a, k)) or one)

    def export(run, format, out=None):
        calls.append(("export", (run, FORMATS[format], out), {}))
        return {"format": format, "path": str(out), "max_abs_diff": 0.0, "input": [1, 3, 32, 32]}

    monkeypatch.setattr(api, "export", export)
    monkeypatch.setattr(report, "build_report", record("report"))
    monkeypatch.setattr(check, "inspect_folder", lambda path: calls.append(("data check", (path,), {})) or ([], []))
    return calls


def test_every_readme_command_parses_and_resolves(resolved, tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    assert {argv[0] for argv in commands} >= {"train", "eval", "predict", "export", "study", "report", "recipes",
                                             "data"}
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results.csv").write_text("recipe,labels,seed,error\ncnn,10,0,0.5\ncnn,20,0,0.4\ncnn,40,0,0.3\n")
    for argv in commands:
        if argv[0] == "fit":  # runs for real on the small CSV above: nothing to stand in for
            assert main(argv) == 0, argv
            continue
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    ran = [name for name, *_ in resolved]
    assert ran.count("train") == 2 and "study" in ran and "export" in ran and "predict" in ran


def test_the_readme_python_runs_on_digits(tmp_path, monkeypatch, png_writer):
    (python,) = [block for block in code_blocks("python") if "from lowdata import" in block]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "new-images").mkdir()
    png_writer(torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8), tmp_path / "new-images" / "a.png")
    images = torch.randint(0, 256, (300, 3, 8, 8), dtype=torch.uint8)  # the user's own tensors (20 % held out)
    labels = torch.arange(300) % 2
    exec(compile(python.replace("epochs=30", "epochs=3"), "README.md", "exec"), {"images": images, "labels": labels})
    assert (tmp_path / "runs" / "digits-cnn" / "summary.json").is_file()
    assert (tmp_path / "runs" / "mine" / "summary.json").is_file()


def test_links_between_readme_and_docs_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken



def own_photos_block() -> str:
    section = README[README.index("## One minute on your own images"):]
    return code_blocks("bash", section)[0]


def write_mixed_photos(root: Path, classes: tuple[str, ...], per_class: int) -> None:
    """JPEG photos at two sizes (W x H 24x18 and 16x20), each class a colour a model can learn."""
    from PIL import Image

    generator = torch.Generator().manual_seed(0)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (24, 18) if i % 2 else (16, 20)
            colour = [40 + 80 * ((index + c) % 3) for c in range(3)]
            pixels = torch.tensor(colour).view(1, 1, 3) + torch.randint(-30, 30, (size[1], size[0], 3),
                                                                         generator=generator)
            Image.fromarray(pixels.clamp(0, 255).to(torch.uint8).numpy()).save(root / name / f"{i}.jpg")


@pytest.mark.slow
def test_the_own_photos_commands_run_as_printed_on_photos_of_mixed_sizes(tmp_path, monkeypatch):
    """The README's own-photos block for real (its epochs cut to 1), on a folder of two image sizes."""
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    write_mixed_photos(tmp_path / "photos", ("cat", "dog", "fox"), 50)
    write_mixed_photos(tmp_path / "new-photos", ("x",), 4)
    write_mixed_photos(tmp_path, ("unlabelled",), 120)  # a flat folder of images
    block = re.sub(r"--(budget-)?epochs \d+", r"--\1epochs 1", own_photos_block())
    commands = readme_commands_of(block)
    assert [argv[0] for argv in commands] == ["data", "select", "train", "train", "eval", "predict", "export",
                                              "study"]
    for argv in commands:
        assert main(argv) == 0, argv
    assert (tmp_path / "cct.onnx").is_file() and (tmp_path / "runs" / "study" / "report.html").is_file()
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 1 + 4
    assert len((tmp_path / "to-label.csv").read_text().splitlines()) == 1 + 100


def readme_commands_of(block: str) -> list[list[str]]:
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.split(r"\s#\s", line)[0].strip()
        if line.startswith("lowdata ") and "..." not in line:
            commands.append(shlex.split(line)[1:])
    return commands
