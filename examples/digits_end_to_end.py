"""lowdata end to end on scikit-learn's digits (embedded, no network), in about a minute on 2 CPU cores:
train a CNN and a transformer with a locality bias, a small data-hunger study of the two, predictions for a
folder of new images, and an export that plain timm loads.

    python examples/digits_end_to_end.py runs/example        # every output lands under this folder
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

from lowdata import export, predict, run_study, train
from lowdata.data import load_dataset


def main(out: Path) -> None:
    # 1. one run each: 200 labels (20 per class), the rest of the training split unused
    cnn = train(data="digits", labels=200, model="resnet20", epochs=40, out=str(out / "cnn"))
    cct = train(data="digits", labels=200, model="cct-2/3x2", epochs=40, out=str(out / "cct"))
    print(f"test accuracy with 200 labels: resnet20 {cnn['test_acc']:.1%}, cct-2/3x2 {cct['test_acc']:.1%}")

    # 2. a small study: both recipes at three budgets, fitted; the answer is in report.md / report.html
    run_study(out / "study", data="digits", sizes=[50, 100, 200], recipes=["cnn", "cct-2"], seeds=[0],
              budget_epochs=40)
    answer = (out / "study" / "report.md").read_text().split("## Answer", 1)[1].split("![", 1)[0].strip()
    print(next(line for line in answer.splitlines() if line.startswith("- With ")))  # the smallest budget's pick

    # 3. predictions for a folder of images the runs never saw (here: five test digits written as PNG)
    folder = out / "new-images"
    folder.mkdir(parents=True, exist_ok=True)
    test_images = load_dataset("digits").test_images[:5]
    for i, image in enumerate(test_images):
        Image.fromarray(image[0].numpy()).save(folder / f"digit-{i}.png")
    for row in predict(out / "cct", folder, top_k=2):
        print(f"{Path(row['image']).name}: {row['classes'][0]} ({row['probabilities'][0]:.0%})")

    # 4. export: a timm folder (timm.create_model("local-dir:...", pretrained=True) after `import lowdata.models`)
    exported = export(out / "cnn", format="timm", out=out / "cnn-timm")
    print(json.dumps({"exported": exported["path"], "max_abs_diff": exported["max_abs_diff"]}))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/digits_end_to_end.py OUT_DIR")
    main(Path(sys.argv[1]))
