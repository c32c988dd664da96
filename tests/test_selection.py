"""`lowdata select`: TypiClust's and ProbCover's choices on constructed points, seeds, labelled images never
chosen, the Label Studio file, the memory a 50,000-image pool takes."""
import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lowdata.cli import main
from lowdata.errors import UsageError
from lowdata.selection.select import select_images
from lowdata.selection.strategies import (STRATEGIES, choose_probcover, choose_typiclust, purest_radius,
                                          typicality)


def blob(direction: int, size: int, spread: float = 0.1) -> np.ndarray:
    """A centre on axis `direction` of 3-D space and size - 1 points around it at the same angle (after
    L2 normalisation the centre stays the most typical point of its blob)."""
    centre = np.eye(3)[direction] * 4.0
    others = [i for i in range(3) if i != direction]
    ring = []
    for k in range(size - 1):
        angle = 2 * np.pi * k / (size - 1)
        offset = spread * (np.cos(angle) * np.eye(3)[others[0]] + np.sin(angle) * np.eye(3)[others[1]])
        ring.append(centre + 4.0 * offset)
    return np.stack([centre, *ring]).astype(np.float32)


def test_typiclust_takes_the_most_typical_image_of_the_least_covered_largest_clusters():
    points = np.concatenate([blob(0, 10), blob(1, 7), blob(2, 5)])  # rows 0-9, 10-16, 17-21; centres 0, 10, 17
    labelled = np.zeros(len(points), bool)
    labelled[3] = True  # the largest blob is covered
    choice = choose_typiclust(points, labelled, 2, torch.Generator().manual_seed(0))
    assert choice.index.tolist() == [10, 17]  # the uncovered blobs, larger first, each by its centre
    assert choice.notes["clusters"] == 3  # |labelled| + N
    values = typicality(points[10:17] / np.linalg.norm(points[10:17], axis=1, keepdims=True))
    assert int(np.argmax(values)) == 0 and choice.score[0] == pytest.approx(values.max())
    nothing = np.zeros(len(points), bool)  # none covered: the largest blob first, each by its centre
    assert choose_typiclust(points, nothing, 3, torch.Generator().manual_seed(0)).index.tolist() == [0, 10, 17]


def test_probcover_picks_delta_by_purity_and_covers_greedily():
    distances = np.array([[1.0, 2.0], [1.0, 3.0], [2.0, 4.0], [0.5, 1.5]])
    indices = np.array([[1, 2], [0, 2], [0, 1], [0, 1]])
    pseudo = np.array([0, 0, 1, 1])
    # nearest neighbour of another pseudo-label: point 0 -> 2 at 2.0, 1 -> 2 at 3.0, 2 -> 0 at 2.0, 3 -> 0 at 0.5
    assert purest_radius(distances, indices, pseudo, purity=0.95) == 0.5  # every ball pure: below the smallest
    assert purest_radius(distances, indices, pseudo, purity=0.5) == 2.0  # two of four balls may be impure
    angles = np.array([0.0, 0.05, 0.10, 0.15, 1.0, 1.05, 2.5])  # on the unit circle: normalising keeps them
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    choice = choose_probcover(circle, np.zeros(7, bool), 3, torch.Generator().manual_seed(0), delta=0.08)
    # balls of 0.08: {0,1}, {0,1,2}, {1,2,3}, {2,3}, {4,5}, {4,5}, {6}. Point 1 covers three (first of a tie with
    # 2), then 4 covers two, then 2, 3 and 6 each cover one more: 2 comes first
    assert choice.index.tolist() == [1, 4, 2] and choice.score.tolist() == [3.0, 2.0, 1.0]
    labelled = np.zeros(7, bool)
    labelled[5] = True  # covers 4 and 5 already
    assert choose_probcover(circle, labelled, 2, torch.Generator().manual_seed(0), delta=0.08).index.tolist() == [1, 2]


def test_the_same_seed_gives_the_same_list_and_labelled_images_are_never_chosen(tmp_path):
    for strategy in STRATEGIES.names():
        first = select_images("digits", 15, str(tmp_path / f"{strategy}-a.csv"), strategy, labels=40, seed=3)
        again = select_images("digits", 15, str(tmp_path / f"{strategy}-b.csv"), strategy, labels=40, seed=3)
        assert (tmp_path / f"{strategy}-a.csv").read_text() == (tmp_path / f"{strategy}-b.csv").read_text()
        assert first["selected"] == again["selected"] == 15
    from lowdata.data import load_dataset, select_budget

    dataset = load_dataset("digits")
    labelled = set(select_budget(dataset.train_labels, 10, 3, total=40).labelled.tolist())
    for strategy in STRATEGIES.names():
        rows = list(csv.DictReader(open(tmp_path / f"{strategy}-a.csv")))
        chosen = [int(row["image"]) for row in rows]
        assert len(set(chosen)) == 15 and not labelled & set(chosen), strategy
        assert [int(row["rank"]) for row in rows] == list(range(1, 16))


def test_a_folder_gives_paths_and_label_studio_tasks(tmp_path, image_folder_writer):
    folder = image_folder_writer(tmp_path / "photos", per_class=8)
    out = tmp_path / "tasks.json"
    select_images(str(folder), 5, str(out), "kmeans", output_format="label-studio")
    tasks = json.loads(out.read_text())
    assert len(tasks) == 5 and all(set(task) == {"data", "meta"} and set(task["data"]) == {"image"} for task in tasks)
    assert all((tmp_path / "photos" / "train").as_posix() in task["data"]["image"] for task in tasks)
    assert all(tmp_path.joinpath(task["data"]["image"]).is_file() for task in tasks)
    assert [task["meta"]["rank"] for task in tasks] == [1, 2, 3, 4, 5]
    loose = tmp_path / "unlabelled"
    loose.mkdir()
    for path in sorted((folder / "train" / "cat").iterdir())[:6]:
        (loose / path.name.replace(".png", "-a.png")).write_bytes(path.read_bytes())
    summary = select_images(str(loose), 3, str(tmp_path / "loose.csv"), "probcover", classes=2)
    rows = list(csv.DictReader(open(tmp_path / "loose.csv")))
    assert summary["candidates"] == 6 and [Path(row["image"]).parent for row in rows] == [loose] * 3
    nested = tmp_path / "nested"  # the same images one folder down (unlabelled/batch1/*): still unlabelled
    nested.mkdir()
    loose.rename(nested / "batch1")
    assert select_images(str(nested), 3, str(tmp_path / "nested.csv"), "probcover", classes=2)["candidates"] == 6
    (tmp_path / "mine.csv").write_text("my notes\n")
    with pytest.raises(UsageError, match="lowdata did not write it"):
        select_images(str(folder), 5, str(tmp_path / "mine.csv"), "random")
    assert (tmp_path / "mine.csv").read_text() == "my notes\n"
    with pytest.raises(UsageError, match="margin ranks by a trained run's uncertainty"):
        select_images(str(folder), 5, str(tmp_path / "m.csv"), "margin")


def test_the_command_line_says_what_it_chose(tmp_path, capsys):
    assert main(["select", "--data", "digits", "--n", "10", "--strategy", "probcover", "--out",
                 str(tmp_path / "l.csv")]) == 0
    said = capsys.readouterr().out
    assert "chose 10 of 1,438 images by probcover on pca features" in said and "delta" in said
    assert main(["select", "--data", "digits", "--n", "10", "--strategy", "typiklust", "--out",
                 str(tmp_path / "x.csv")]) == 2
    assert "did you mean 'typiclust'" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_fifty_thousand_images_select_in_bounded_memory():
    import tracemalloc

    features = np.random.default_rng(0).standard_normal((50_000, 128)).astype(np.float32)
    labelled = np.zeros(len(features), bool)
    tracemalloc.start()
    for strategy in ("typiclust", "probcover"):
        STRATEGIES.get(strategy)(features, labelled, 100, torch.Generator().manual_seed(0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2 * 1024 ** 3  # a dense 50,000 x 50,000 float32 matrix alone would take 9.3 GiB


def test_train_can_take_its_budget_by_a_strategy(tmp_path):
    from lowdata import train
    from lowdata.data import load_dataset
    from lowdata.selection.select import chosen_budget

    dataset = load_dataset("digits")
    budget = chosen_budget(dataset, 30, "typiclust", "pca", 2)
    select_images("digits", 30, str(tmp_path / "t.csv"), "typiclust", seed=2)
    listed = sorted(int(row["image"]) for row in csv.DictReader(open(tmp_path / "t.csv")))
    assert budget.labelled.tolist() == listed and len(budget.pool) == len(dataset.train_labels) - 30
    summary = train(out=str(tmp_path / "run"), data="digits", labels=30, epochs=1, seed=2, selection="typiclust")
    assert summary["test_acc"] >= 0
    with pytest.raises(UsageError, match="set val_fraction=0 with it"):
        train(out=str(tmp_path / "v"), data="digits", labels=30, epochs=1, selection="kmeans", val_fraction=0.2)


def test_train_reads_selection_features_from_a_weights_file_with_its_model(tmp_path, capsys, monkeypatch):
    from safetensors.torch import save_file

    from lowdata import train
    from lowdata.data import load_dataset
    from lowdata.models import create_model
    from lowdata.selection.select import chosen_budget

    torch.manual_seed(3)
    weights = tmp_path / "features.safetensors"
    save_file(create_model("resnet20", 10, 1, (8, 8)).state_dict(), str(weights))
    select_images("digits", 30, str(tmp_path / "k.csv"), "kmeans", features=str(weights), model="resnet20", seed=2)
    listed = sorted(int(row["image"]) for row in csv.DictReader(open(tmp_path / "k.csv")))
    dataset = load_dataset("digits")
    assert chosen_budget(dataset, 30, "kmeans", str(weights), 2, "resnet20").labelled.tolist() == listed
    assert chosen_budget(dataset, 30, "kmeans", "pca", 2).labelled.tolist() != listed  # the features decide
    import lowdata.selection.select as select_module

    chosen = []  # the budgets train took, as chosen_budget returned them
    real = select_module.chosen_budget
    monkeypatch.setattr(select_module, "chosen_budget", lambda *a, **k: chosen.append(real(*a, **k)) or chosen[-1])
    train(out=str(tmp_path / "run"), data="digits", labels=30, epochs=1, seed=2, selection="kmeans",
          selection_features=str(weights), selection_model="resnet20", selection_size=16)
    resized = chosen_budget(dataset, 30, "kmeans", str(weights), 2, "resnet20", size=16).labelled
    assert resized.tolist() != listed  # the features read at 16 px are other features
    assert chosen[0].labelled.tolist() == resized.tolist()
    err = capsys.readouterr().err
    assert f"labelled images chosen by kmeans on {weights} features read at 16 px" in err


def test_features_are_read_at_the_given_size_and_once(tmp_path):
    from lowdata.data import load_dataset
    from lowdata.augment import Normalize
    from lowdata.models import create_model
    from lowdata.objectives.teacher_cache import teacher_fingerprint
    from lowdata.selection.features import PreLogits, model_outputs

    torch.manual_seed(0)
    dataset = load_dataset("digits")
    images, info = dataset.train_images[:40], dataset.info
    network = create_model("resnet20", 10, 1, (8, 8)).eval()
    normalize = Normalize(info)
    as_teacher = teacher_fingerprint(network, normalize.mean, normalize.std)
    other_head = copy.deepcopy(network)  # the same features, another head drawn at random for the classes
    torch.nn.init.normal_(other_head.get_classifier().weight)
    with torch.no_grad():
        by_hand = torch.nn.functional.interpolate(normalize(images), size=(20, 20), mode="bilinear",
                                                  align_corners=False, antialias=True)
        expected = network.forward_head(network.forward_features(by_hand), pre_logits=True)
    vectors = model_outputs(network, images, info, size=20)
    torch.testing.assert_close(torch.from_numpy(vectors), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(model_outputs(network, images, info), vectors, atol=1e-3)  # 8 px: other features

    def refused(*args):
        raise AssertionError("the features were computed again")
    network.forward_features = refused
    np.testing.assert_array_equal(model_outputs(network, images, info, size=20), vectors)  # from the cache
    other_head.forward_features = refused  # a run whose head was drawn otherwise reads the same cached pass
    np.testing.assert_array_equal(model_outputs(other_head, images, info, size=20), vectors)
    assert teacher_fingerprint(PreLogits(network), normalize.mean, normalize.std) != as_teacher

