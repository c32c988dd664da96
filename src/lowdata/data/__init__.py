"""Datasets as in-memory uint8 tensors, and class-balanced, nested label budgets."""
from lowdata.data.budget import Budget, select_budget
from lowdata.data.datasets import DATASETS, Dataset, DatasetInfo, load_dataset

__all__ = ["Budget", "DATASETS", "Dataset", "DatasetInfo", "load_dataset", "select_budget"]
