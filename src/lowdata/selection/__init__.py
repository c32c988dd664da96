"""Which images to label: cold-start selection from the unlabelled pool (`lowdata select`)."""
from lowdata.selection.select import select_images
from lowdata.selection.strategies import STRATEGIES

__all__ = ["STRATEGIES", "select_images"]
