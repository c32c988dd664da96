"""Recipes that take other recipes' runs at the same budget and seed: teacher, guide, start (the cell's --init)."""
import pytest

from lowdata.errors import UsageError
from lowdata.study.plan import make_plan
from lowdata.study.recipes import load_recipes, pick

LINKED = """
small-cnn:
  family: cnn
  settings: {model: resnet20}
student:
  settings: {model: cct-2/3x2, guide_on: labelled}
  guide: small-cnn
semi:
  settings: {model: cct-2/3x2, pool: all, pool_teacher: ema}
  start: student
  guide: small-cnn
"""


def plan_of(tmp_path, text, names, **kwargs):
    path = tmp_path / "linked.yaml"
    path.write_text(text)
    known = load_recipes(str(path))
    return make_plan("digits", [30, 60, 120], pick(known, names), [0], 1438, budget_epochs=1, available=known,
                     **kwargs)


def test_guide_and_start_links_take_the_runs_of_the_same_budget_and_seed(tmp_path):
    plan = plan_of(tmp_path, LINKED, ["semi", "student", "small-cnn"])
    cells = {c.id: c for c in plan.cells}
    assert cells["semi-n60-s0"].needs == {"guide": "cells/small-cnn-n60-s0", "init": "cells/student-n60-s0"}
    assert cells["student-n60-s0"].needs == {"guide": "cells/small-cnn-n60-s0"}
    order = [c.id for c in plan.cells]
    for cell in plan.cells:  # every cell after the cells it takes, though `semi` was named first
        for need in cell.needs.values():
            assert order.index(need.split("/")[1]) < order.index(cell.id)
    assert plan.recipes["semi"]["start"] == "student" and plan.recipes["semi"]["guide"] == "small-cnn"


def test_a_linked_recipe_outside_the_study_is_a_shared_stage_with_its_own_links(tmp_path):
    plan = plan_of(tmp_path, LINKED, ["semi", "small-cnn"])
    stages = {s.id: s for s in plan.stages}
    assert set(stages) == {"student-n30-s0", "student-n60-s0", "student-n120-s0"}
    assert stages["student-n60-s0"].needs == {"guide": "cells/small-cnn-n60-s0"}
    assert stages["student-n60-s0"].settings["labels"] == 60
    assert {c.id: c for c in plan.cells}["semi-n60-s0"].needs["init"] == "stages/student-n60-s0"


@pytest.mark.parametrize("text, message", [
    (LINKED + "loop-a:\n  settings: {model: resnet20}\n  start: loop-b\nloop-b:\n  settings: {model: resnet20}\n"
     "  teacher: loop-a\n", "in a circle"),
    (LINKED + "x:\n  settings: {model: cct-2/3x2}\n  guide: nobody\n", "names guide 'nobody', which is not a recipe"),
    (LINKED + "x:\n  settings: {model: vit-tiny, guide: runs/cnn}\n", "use the recipe's `teacher:` or `guide:`"),
    (LINKED + "x:\n  settings: {model: vit-tiny}\n  start: student\n  pretrain: {epochs: 1}\n",
     "more than one of pretrain, source and start"),
])
def test_links_that_cannot_be_planned_are_one_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_recipes(str(path))


def test_a_recipe_with_a_stage_of_its_own_cannot_be_linked(tmp_path):
    text = LINKED + "pre:\n  settings: {model: vit-tiny}\n  pretrain: {epochs: 1}\nafter:\n  settings: " \
                    "{model: vit-tiny}\n  start: pre\n"
    with pytest.raises(UsageError, match="recipe 'pre' starts from a stage of its own"):
        plan_of(tmp_path, text, ["after"])


def test_the_built_in_semi_supervised_recipes_start_from_their_labels_only_cells(capsys):
    from lowdata.cli import main

    known = load_recipes()
    plan = make_plan("digits", [30, 60, 120], pick(known, ["cnn", "cnn+ema", "cct-2+ema"]), [0], 1438,
                     budget_epochs=1, available=known)
    cells = {c.id: c for c in plan.cells}
    assert cells["cnn+ema-n60-s0"].needs == {"init": "cells/cnn-n60-s0"}
    assert cells["cct-2+ema-n60-s0"].needs == {"init": "stages/cct-2-n60-s0"}
    assert cells["cct-2+ema-n60-s0"].settings["objective"] == "ema-teacher"
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "objective=ema-teacher (start: cnn)" in out
    column = max(len(name) for name in known) + 2  # every name fits its column, descriptions wrap beside it
    assert all(line.startswith(" " * column) or line[column - 2:column] == "  " for line in out.splitlines())


def test_the_every_lever_recipes_start_from_their_whitened_runs_and_carry_drloc_on_the_pool():
    known = load_recipes()
    plan = make_plan("digits", [30, 60, 120], pick(known, ["cnn+ema+drloc", "cct-2+priors+ema+drloc"]), [0], 1438,
                     budget_epochs=1, available=known)
    cells = {c.id: c for c in plan.cells}
    stages = {s.id: s for s in plan.stages}
    assert cells["cct-2+priors+ema+drloc-n60-s0"].needs == {"init": "stages/cct-2+priors+white-n60-s0"}
    assert cells["cnn+ema+drloc-n30-s0"].needs == {"init": "stages/cnn+white-n30-s0"}
    assert stages["cct-2+priors+white-n60-s0"].settings["patch_whitening"] is True
    for cell in plan.cells:  # the EMA stage reads the pool and carries the term on both kinds of image
        assert (cell.settings["objective"], cell.settings["pool"]) == ("ema-teacher", "all")
        assert cell.settings["drloc"] == {"images": "both"}
    assert cells["cct-2+priors+ema+drloc-n30-s0"].settings["model_args"] == {"gpsa_blocks": 1, "pos_embed": "sincos"}
