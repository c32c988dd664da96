"""Equal-compute studies: each cell's epochs from the FLOP budget, its recipe's cost per image and its size."""
import pytest

from lowdata.errors import UsageError
from lowdata.models import create_model, sized_model_args
from lowdata.models.factory import forward_flops
from lowdata.study.compute import cost_per_image
from lowdata.study.plan import make_plan
from lowdata.study.recipes import load_recipes, pick

DIGITS = (1, 8, 8, 10)  # channels, height, width, classes


def forward(model: str) -> int:
    args = sized_model_args(model, {}, (8, 8))
    return forward_flops(create_model(model, num_classes=10, in_chans=1, img_size=(8, 8), **args), 1, (8, 8))


def test_each_recipe_gets_the_epochs_its_cost_implies():
    recipes = load_recipes()
    budget = 2e11
    plan = make_plan("digits", [100, 200, 400], pick(recipes, ["cnn", "vit-mini"]), [0], 1438,
                     budget_flops=budget, data_shape=DIGITS)
    per_image = {"cnn": 3 * forward("resnet20"), "vit-mini": 3 * forward("vit-mini")}
    for cell in plan.cells:
        assert cell.settings["epochs"] == round(budget / (per_image[cell.recipe] * cell.size)), cell.id
    assert plan.budget == {"epochs": None, "steps": None, "flops": budget} and plan.budget_notes == []
    epochs = {cell.id: cell.settings["epochs"] for cell in plan.cells}
    assert epochs["cnn-n100-s0"] > epochs["vit-mini-n100-s0"]  # the cheaper model gets more epochs


def test_a_pooled_distilled_recipe_pays_for_its_pool_and_its_teacher():
    recipes = load_recipes()
    student, teacher = forward("cct-2/3x2"), forward("resnet20")
    # cct-2+pool: one pool image per labelled image (pool_ratio 1), the teacher reading both
    assert cost_per_image(recipes["cct-2+pool"], recipes, {}, DIGITS[:3], 10) == 3 * student * 2 + teacher * 2


def test_a_budget_too_small_for_a_size_is_held_at_one_epoch_and_said():
    plan = make_plan("digits", [100, 200, 400], pick(load_recipes(), ["cnn"]), [0, 1], 1438, budget_flops=1e9,
                     data_shape=DIGITS)
    assert {cell.settings["epochs"] for cell in plan.cells} == {1}
    assert len(plan.budget_notes) == 3 and plan.budget_notes[0].startswith("cnn at 100 labels: 0.")
    assert "held at 1, so this cell spends" in plan.budget_notes[0]


def test_one_budget_at_a_time():
    with pytest.raises(UsageError, match="one of --budget-epochs, --budget-steps and --budget-flops"):
        make_plan("digits", [100, 200, 400], pick(load_recipes(), ["cnn"]), [0], 1438, budget_steps=10,
                  budget_flops=1e12, data_shape=DIGITS)
    with pytest.raises(UsageError, match="--budget-flops must be a positive number"):
        make_plan("digits", [100, 200, 400], pick(load_recipes(), ["cnn"]), [0], 1438, budget_flops=-1.0,
                  data_shape=DIGITS)


def test_an_ema_teacher_recipe_costs_the_same_however_it_is_spelt():
    """One cost model: the plan asks the objective the cell builds, so both spellings plan the same cost."""
    from lowdata.study.recipes import Recipe

    settings = {"model": "cct-2/3x2", "pool": "all"}
    as_objective = Recipe("a", "vit", "", {**settings, "objective": "ema-teacher"})
    as_pool_teacher = Recipe("b", "vit", "", {**settings, "pool_teacher": "ema"})
    student = forward("cct-2/3x2")
    costs = [cost_per_image(recipe, {}, {}, DIGITS[:3], 10) for recipe in (as_objective, as_pool_teacher)]
    # the student trained on a labelled and a pool image, its moving average reading the pool image
    assert costs == [3 * student * 2 + student] * 2


def test_a_guided_recipe_pays_for_its_guide_on_the_images_it_guides():
    recipes = load_recipes()
    student, guide = forward("vit-tiny-convstem"), forward("resnet20")
    assert recipes["vit+convstem+guide"].settings["guidance"] == {"images": "labelled"}
    assert cost_per_image(recipes["vit+convstem+guide"], recipes, {}, DIGITS[:3], 10) == 3 * student + guide
