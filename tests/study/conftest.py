import pytest

TINY_RECIPES = """
cnn:
  family: cnn
  description: ResNet-20
  settings: {model: resnet20}
vit:
  family: vit
  description: a one-block ViT, to keep tests fast
  settings: {model: vit-tiny, model_args: {depth: 1, embed_dim: 32, num_heads: 2}}
"""


@pytest.fixture
def tiny_recipes(tmp_path):
    path = tmp_path / "recipes.yaml"
    path.write_text(TINY_RECIPES)
    return str(path)


@pytest.fixture
def tiny_study(tiny_recipes):
    """Study arguments for a 12-cell grid on digits that trains in seconds."""
    return dict(data="digits", sizes=[30, 60, 120], recipes=["cnn", "vit"], seeds=[0, 1], budget_epochs=2,
                settings={"batch_size": 32}, recipes_file=tiny_recipes)
