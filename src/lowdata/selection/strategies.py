"""Which unlabelled images to label first: cold-start strategies over image features, each in a registry.

Every strategy takes the candidates' features (N, D), a mask of the ones already labelled (counted as covered,
never chosen), how many to choose and a seeded generator, and returns the chosen indices in labelling order with
one score each (higher: chosen earlier for a better reason). Memory and time grow linearly with N: k-means and
k-nearest-neighbour graphs (scikit-learn's, which work in bounded chunks), never an N x N matrix.

- random: a seeded permutation.
- kmeans: k-means into N clusters; the image nearest each centre, larger clusters first.
- typiclust (Hacohen et al., ICML 2022, arXiv 2202.02794): k-means into |labelled| + N clusters (at most 500,
  the paper's cap); repeatedly the cluster with the fewest labelled or chosen images (the larger on a tie, clusters
  of 5 or more first) gives its most typical image: 1 / mean distance to its 20 nearest neighbours in the
  cluster, on L2-normalised features.
- probcover (Yehuda et al., NeurIPS 2022, arXiv 2205.11320): balls of radius delta around each image on its
  k-nearest-neighbour graph; delta the largest radius whose balls stay >= 95 % pure under k-means pseudo-labels
  (as many clusters as classes); greedily the image whose ball covers the most uncovered images.
- margin (for later rounds, with a trained run's class probabilities): the smallest gap between the top two.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lowdata.registry import Registry

MAX_CLUSTERS = 500  # TypiClust's cap on k-means clusters
MIN_CLUSTER = 5  # TypiClust's smallest cluster that gives an image while larger ones remain
TYPICALITY_NEIGHBOURS = 20
PURITY = 0.95  # ProbCover's purity threshold for delta
GRAPH_NEIGHBOURS = 20  # the sparse graph ProbCover's balls are drawn on


@dataclass(frozen=True)
class Choice:
    index: np.ndarray  # chosen candidates, in labelling order
    score: np.ndarray  # one per chosen candidate
    notes: dict


STRATEGIES: Registry[Callable[..., Choice]] = Registry("selection strategy")


def normalised(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def seed_of(generator: torch.Generator) -> int:
    return int(torch.randint(2**31 - 1, (1,), generator=generator))


def cluster(features: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centres) of k-means into k clusters (mini-batch above 50 clusters, as TypiClust)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    k = max(1, min(k, len(features)))
    method = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096) if k > 50 else \
        KMeans(n_clusters=k, random_state=seed, n_init=10)
    labels = method.fit_predict(features)
    return labels, method.cluster_centers_


@STRATEGIES.register("random")
def choose_random(features: np.ndarray, labelled: np.ndarray, n: int, generator: torch.Generator) -> Choice:
    free = np.flatnonzero(~labelled)
    order = free[torch.randperm(len(free), generator=generator).numpy()[:n]]
    return Choice(order, np.zeros(len(order)), {})


@STRATEGIES.register("kmeans")
def choose_kmeans(features: np.ndarray, labelled: np.ndarray, n: int, generator: torch.Generator) -> Choice:
    free = np.flatnonzero(~labelled)
    points = normalised(features[free])
    labels, centres = cluster(points, n, seed_of(generator))
    chosen, scores = [], []
    for c in np.argsort(-np.bincount(labels, minlength=len(centres)), kind="stable"):
        members = np.flatnonzero(labels == c)
        if len(members):
            distance = np.linalg.norm(points[members] - centres[c], axis=1)
            chosen.append(free[members[np.argmin(distance)]])
            scores.append(-float(distance.min()))
    return Choice(np.array(chosen[:n]), np.array(scores[:n]), {"clusters": int(len(centres))})


def typicality(points: np.ndarray, neighbours: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """1 / mean distance to each point's `neighbours` nearest others (fewer in a small cluster)."""
    from sklearn.neighbors import NearestNeighbors

    if len(points) < 2:
        return np.ones(len(points))
    k = min(neighbours, len(points) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return 1.0 / (distances[:, 1:].mean(axis=1) + 1e-5)


@STRATEGIES.register("typiclust")
def choose_typiclust(features: np.ndarray, labelled: np.ndarray, n: int, generator: torch.Generator) -> Choice:
    points = normalised(features)
    k = min(int(labelled.sum()) + n, MAX_CLUSTERS)
    labels, _ = cluster(points, k, seed_of(generator))
    sizes = np.bincount(labels, minlength=k)
    covered = np.bincount(labels[labelled], minlength=k).astype(float)
    remaining = np.bincount(labels[~labelled], minlength=k)  # members neither labelled nor chosen
    typical: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # cluster -> (members, typicality), computed once
    chosen, scores = [], []
    for _ in range(min(n, int((~labelled).sum()))):
        open_ = remaining > 0
        big = open_ & (sizes >= MIN_CLUSTER)
        allowed = big if big.any() else open_
        # fewest labelled or chosen, then the largest: np.lexsort sorts by its last key first
        c = int(np.lexsort((-sizes, np.where(allowed, covered, np.inf)))[0])
        if c not in typical:
            members = np.flatnonzero(labels == c)
            values = typicality(points[members])
            values[labelled[members]] = -np.inf
            typical[c] = (members, values)
        members, values = typical[c]
        pick = int(np.argmax(values))
        chosen.append(members[pick])
        scores.append(float(values[pick]))
        values[pick] = -np.inf
        remaining[c] -= 1
        covered[c] += 1
    return Choice(np.array(chosen, dtype=int), np.array(scores), {"clusters": int(k)})


def knn_graph(points: np.ndarray, k: int = GRAPH_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each point's k nearest others, nearest first: (N, k) each."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(points) - 1)
    distances, indices = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, 1:], indices[:, 1:]


def purest_radius(distances: np.ndarray, indices: np.ndarray, pseudo: np.ndarray, purity: float = PURITY
                  ) -> float:
    """The largest delta whose balls are pure (every neighbour within delta shares the point's pseudo-label)
    for at least `purity` of the points: a ball of radius delta is pure iff delta <= the distance to the nearest
    neighbour of another pseudo-label, so delta is that distance's (1 - purity) quantile."""
    other = pseudo[indices] != pseudo[:, None]
    impure = np.where(other.any(axis=1), np.where(other, distances, np.inf).min(axis=1), np.inf)
    ordered = np.sort(impure)
    allowed = int(np.floor((1 - purity) * len(ordered)))  # points whose ball may be impure
    return float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1])


@STRATEGIES.register("probcover")
def choose_probcover(features: np.ndarray, labelled: np.ndarray, n: int, generator: torch.Generator,
                     classes: int = 10, delta: float | None = None) -> Choice:
    points = normalised(features)
    distances, indices = knn_graph(points)
    if delta is None:
        pseudo, _ = cluster(points, classes, seed_of(generator))
        delta = purest_radius(distances, indices, pseudo)
    # ball(i) = i and its graph neighbours strictly within delta
    ball = np.concatenate([np.arange(len(points))[:, None], indices], axis=1)
    inside = np.concatenate([np.ones((len(points), 1), bool), distances < delta], axis=1)
    covered = np.zeros(len(points), bool)
    covered[ball[labelled][inside[labelled]]] = True
    taken = labelled.copy()
    chosen, scores = [], []
    for _ in range(min(n, int((~labelled).sum()))):
        gain = (inside & ~covered[ball]).sum(axis=1)
        gain[taken] = -1
        best = int(np.argmax(gain))
        if gain[best] <= 0:  # everything is covered: the rest at random, as ProbCover does
            free = np.flatnonzero(~taken)
            best = int(free[int(torch.randint(len(free), (1,), generator=generator))])
        chosen.append(best)
        scores.append(float(max(gain[best], 0)))
        taken[best] = True
        covered[ball[best][inside[best]]] = True
    return Choice(np.array(chosen, dtype=int), np.array(scores),
                  {"delta": round(float(delta), 4), "coverage": round(float(covered.mean()), 4)})


def choose_margin(probabilities: np.ndarray, labelled: np.ndarray, n: int) -> Choice:
    """The candidates whose top two class probabilities are closest (a trained run's uncertainty)."""
    top = np.sort(probabilities, axis=1)[:, -2:]
    margin = top[:, 1] - top[:, 0]
    margin[labelled] = np.inf
    order = np.argsort(margin, kind="stable")[:min(n, int((~labelled).sum()))]
    return Choice(order, -margin[order], {})
