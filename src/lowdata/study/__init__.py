"""The data-hunger study: a grid of recipes x label budgets x seeds, learning-curve fits and a report."""
