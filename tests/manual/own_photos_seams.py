"""The README's own-photos path on a folder of mixed sizes, and how many top-1 answers the hand-overs agree on.

    python tests/manual/own_photos_seams.py OUT_DIR [CIFAR10_DIR]

Builds `photos/` (airplane, cat, ship: 80 CIFAR-10 test images each, upscaled to 96x72 or 64x80, W x H) and
`new-photos/` (250 other images at the same two sizes), then runs the README's commands (`lowdata train
--labels-per-class 20` for resnet20 at 30 epochs, cct-2/3x2 and vit-tiny at 60; `predict`; `export`) and, in a
process that never imports lowdata, classifies `new-photos/` with ONNX Runtime alone (preprocessing read from
the file's metadata, with Pillow) and with plain timm (vit-tiny, from RUN/model) or a torch.export program (the
presets timm has no architecture for). Prints one JSON line per model: test accuracy and the agreement counts
with `lowdata predict`. About 10 minutes on 2 cores.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

CLASSES = ("airplane", "cat", "ship")
SIZES = ((96, 72), (64, 80))  # W x H
MODELS = {"resnet20": ("cnn", 30), "cct-2/3x2": ("cct", 60), "vit-tiny": ("vit", 60)}

CONSUMER = r'''
import json, sys
import numpy as np, onnxruntime, torch, timm
from PIL import Image
files, onnx_path, other, kind = sys.argv[1:5]
files = [line for line in open(files).read().splitlines() if line]
session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
channels, height, width = json.loads(meta["input_size"])
mean, std = (np.array(json.loads(meta[key]), dtype=np.float32).reshape(1, -1, 1, 1) for key in ("mean", "std"))
assert meta["resize"] == "squash" and meta["interpolation"].startswith("bilinear") and meta["layout"] == "NCHW"
pixels = np.stack([np.asarray(Image.open(f).convert(meta["channel_order"]).resize((width, height), Image.BILINEAR),
                              dtype=np.float32).reshape(height, width, -1).transpose(2, 0, 1) for f in files])
x = (pixels * json.loads(meta["pixel_scale"]) - mean) / std
onnx_top1 = session.run(None, {"images": x})[0].argmax(1)
if kind == "timm":
    model = timm.create_model("local-dir:" + other, pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=model))
    batch = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
else:
    model = torch.export.load(other).module()
    batch = torch.from_numpy(x)
with torch.no_grad():
    other_top1 = model(batch).argmax(1).numpy()
assert not any(name.startswith("lowdata") for name in sys.modules)
print(json.dumps({"classes": json.loads(meta["classes"]), "onnx": onnx_top1.tolist(), kind: other_top1.tolist()}))
'''


def build_folders(out: Path, cifar: Path) -> None:
    for name in CLASSES:
        files = sorted((cifar / "test" / name).glob("*.jpg"))
        for index, source in enumerate(files[:80 + 84]):
            folder = out / "photos" / name if index < 80 else out / "new-photos"
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{index:03d}" if index < 80 else f"{name}-{index:03d}"
            if index >= 80 + 84 - (1 if name != CLASSES[0] else 0):  # 84 + 83 + 83 = 250 new photos
                continue
            Image.open(source).convert("RGB").resize(SIZES[index % 2], Image.BICUBIC).save(folder / f"{stem}.jpg")


def lowdata(out: Path, *argv: str) -> None:
    subprocess.run([sys.executable, "-m", "lowdata", *argv], cwd=out, check=True)


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    cifar = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parents[3] / "shared" / "datasets"
                 / "cifar10")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "photos").is_dir():
        build_folders(out, cifar)
    new = sorted((out / "new-photos").glob("*.jpg"))
    (out / "new-photos.txt").write_text("".join(f"{path}\n" for path in new))
    for model, (name, epochs) in MODELS.items():
        run = f"runs/{name}"
        if not (out / run / "summary.json").is_file():
            lowdata(out, "train", "--data", "photos", "--labels-per-class", "20", "--model", model, "--epochs",
                    str(epochs), "--out", run)
        lowdata(out, "predict", "--run", run, "new-photos/", "--top-k", "3", "--out", f"predictions-{name}.csv")
        lowdata(out, "export", "--run", run, "--format", "onnx", "--out", f"{name}.onnx")
        kind, other = ("timm", str(out / run / "model")) if model.startswith("vit") else ("export", f"{name}.pt2")
        if kind == "export":
            lowdata(out, "export", "--run", run, "--format", "export", "--out", other)
        consumer = subprocess.run([sys.executable, "-c", CONSUMER, str(out / "new-photos.txt"), f"{name}.onnx",
                                   other, kind], cwd=out, check=True, capture_output=True, text=True)
        seams = json.loads(consumer.stdout.splitlines()[-1])
        with open(out / f"predictions-{name}.csv", newline="") as handle:
            ours = {Path(row["image"]).name: row["class"] for row in csv.DictReader(handle)}
        ours_top1 = [ours[path.name] for path in new]
        truth = [path.name.split("-")[0] for path in new]
        counts = {key: sum(seams["classes"][i] == mine for i, mine in zip(seams[key], ours_top1))
                  for key in ("onnx", kind)}
        summary = json.loads((out / run / "summary.json").read_text())
        print(json.dumps({"model": model, "epochs": epochs, "image_size": summary["input"]["image_size"],
                          "test_acc": summary["test_acc"], "test_images": summary.get("test_images"),
                          "new_photos_acc": sum(a == b for a, b in zip(ours_top1, truth)) / len(new),
                          "agree_onnx_runtime": f"{counts['onnx']}/{len(new)}",
                          f"agree_{'plain_timm' if kind == 'timm' else 'torch_export'}": f"{counts[kind]}/{len(new)}"}),
              flush=True)


if __name__ == "__main__":
    main()
