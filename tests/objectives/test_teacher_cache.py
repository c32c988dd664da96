"""Cached teacher outputs: the live teacher's loss on the same fixed view; rows shared by image; a changed teacher
never reads them; a file lowdata did not write is never replaced."""
import hashlib

import torch

from lowdata.augment import Normalize
from lowdata.data import load_dataset
from lowdata.models import create_model
from lowdata.objectives.distill import Distill
from lowdata.objectives.teacher_cache import cached_teacher_logits, teacher_fingerprint


def setup():
    dataset = load_dataset("digits")
    torch.manual_seed(0)
    teacher = create_model("resnet20", 10, 1, (8, 8)).eval()
    return dataset, teacher, Normalize(dataset.info)


def test_the_cached_teacher_gives_the_live_teachers_loss_on_the_same_fixed_view(tmp_path):
    dataset, teacher, normalize = setup()
    pool = dataset.train_images[100:140]
    logits, said = cached_teacher_logits(teacher, pool, normalize, torch.device("cpu"), torch.no_grad, tmp_path)
    assert said["teacher_cache_computed"] == 40 and said["teacher_cache_saved"]
    student = create_model("resnet20", 10, 1, (8, 8))
    distill = Distill(student, teacher, "soft", 0.5, 2.0).train()
    images, labels = normalize(dataset.train_images[:16]), dataset.train_labels[:16]
    student_view = normalize(pool.flip(-1))
    torch.manual_seed(1)
    live = distill.loss(images, labels, (student_view, normalize(pool)))
    torch.manual_seed(1)
    cached = distill.loss(images, labels, (student_view, None), cached=logits)
    assert torch.allclose(live.loss, cached.loss, atol=1e-5)
    assert torch.allclose(live.logs["pool_loss"], cached.logs["pool_loss"], atol=1e-5)


def test_rows_are_shared_by_image_and_a_changed_teacher_reads_none(tmp_path, capsys):
    dataset, teacher, normalize = setup()
    cpu, first = torch.device("cpu"), dataset.train_images[:30]
    logits, _ = cached_teacher_logits(teacher, first, normalize, cpu, torch.no_grad, tmp_path)
    assert "teacher cache: computing the teacher's outputs on 30 images once (0 read from" in capsys.readouterr().err
    cached_teacher_logits(teacher, first, normalize, cpu, torch.no_grad, tmp_path)
    assert "teacher cache" not in capsys.readouterr().err  # nothing to compute: nothing said
    again, said = cached_teacher_logits(teacher, dataset.train_images[10:50], normalize, cpu, torch.no_grad, tmp_path)
    assert (said["teacher_cache_read"], said["teacher_cache_computed"]) == (20, 20)
    assert torch.equal(again[:20], logits[10:30])
    (path,) = (tmp_path / "teacher-outputs").glob("*.safetensors")  # beside it, lowdata's ledger
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with torch.no_grad():
        teacher.fc.bias.add_(1.0)  # the teacher changed: another fingerprint
    changed, said = cached_teacher_logits(teacher, first, normalize, cpu, torch.no_grad, tmp_path)
    assert (said["teacher_cache_read"], said["teacher_cache_computed"]) == (0, 30)
    assert torch.allclose(changed, logits + 1.0, atol=1e-4)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the first teacher's file untouched


def test_a_file_lowdata_did_not_write_is_never_replaced(tmp_path):
    dataset, teacher, normalize = setup()
    fingerprint = teacher_fingerprint(teacher, normalize.mean, normalize.std)
    theirs = tmp_path / "teacher-outputs" / f"{fingerprint[:40]}.safetensors"
    theirs.parent.mkdir()
    theirs.write_bytes(b"someone else's file")
    logits, said = cached_teacher_logits(teacher, dataset.train_images[:8], normalize, torch.device("cpu"),
                                         torch.no_grad, tmp_path)
    assert logits.shape == (8, 10) and said["teacher_cache_saved"] is False
    assert theirs.read_bytes() == b"someone else's file"
