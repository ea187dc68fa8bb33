"""AB Darknet's [contrastive] training loss for detectors (forward_contrastive_layer with a
[yolo] layer; "Supervised Contrastive Learning", arXiv:2004.11362, as AB writes it).

Each cell of the [yolo] grid that a truth was assigned to (its best anchor) has an embedding:
the channels ``a*E .. a*E+E-1`` of the [contrastive] input at that cell, for anchor ``a``. Its
label is the truth's track id (``hash(image path) % 4000 * 4000 + line``, so the two views of an
image that ``[net] contrastive=1`` loads share it) and its class the truth's class. Two
embeddings are compared when they differ, share the class and the time step; their cosine
similarity gives ``exp(sim / temperature)`` and P, that over the sum of the same column's other
terms. Every labelled embedding is pulled towards the others with its label (positives) and
pushed from up to ``contrastive_neg_max`` others of the positives' class with another label
(negatives), by AB's gradient formulas; then ``cls_normalizer``, the ``max_delta`` clip and
``cost = sum(delta^2)``.
"""

import numpy as np

from ..host_math import cosine_similarities

f32 = np.float32


def contrastive_loss(layer, x, labels, class_ids, time_steps, delta_out=None, zeroed=False):
    """The [contrastive] layer's delta (Darknet's l.delta: the negative gradient of its input)
    and cost for one training pass.

    layer: the built :class:`~pydarknet.layers.contrastive.Contrastive` (``n`` anchors,
    ``embedding_size`` E, ``temperature``, ``cls_normalizer``, ``max_delta``,
    ``contrastive_neg_max``); x: its input float32 [N, c, h, w]; labels, class_ids: int
    [N, n, h*w] from the [yolo] layer's loss (-1: no truth at that cell); time_steps: the
    net's, splitting the N rows into step-major blocks.

    Returns ``(delta, cost, stats)``; stats: ``accuracy`` (AB's "contrast accuracy": the
    percentage, rounded down, of embeddings whose most similar positive is closer than their
    most similar negative; -1 when none has both), ``pairs``, ``embeddings``, ``skipped``
    (embeddings of length 0, which stop AB's Darknet with an error; they get no delta here).
    """
    x = np.asarray(x, np.float32)
    N = x.shape[0]
    n, E = layer.n, layer.embedding_size
    hw = layer.h * layer.w
    S = N * n * hw
    if (delta_out is not None and delta_out.dtype == np.float32 and delta_out.size == x.size
            and delta_out.flags.c_contiguous):
        delta = delta_out.reshape(N, -1)
        if not zeroed:
            delta.fill(0)
    else:
        delta = np.zeros((N, x[0].size), np.float32)

    lab = np.asarray(labels, np.int64).reshape(S)
    cid = np.asarray(class_ids, np.int64).reshape(S)
    idx = np.flatnonzero(lab >= 0)                # the labelled z_index values, in order
    M = idx.size
    b_of, a_of, loc = idx // (n * hw), idx // hw % n, idx % hw
    flat = x.reshape(N, -1, hw)
    z = np.stack([flat[b_of, a_of * E + m, loc] for m in range(E)], axis=1) if M \
        else np.zeros((0, E), np.float32)                                    # [M, E]
    z64 = z.astype(np.float64)
    sim, norms = cosine_similarities(z64)
    sim = sim.astype(np.float32)

    zl, zc = lab[idx], cid[idx]
    mini_batch = max(N // max(time_steps, 1), 1)
    ts = b_of // mini_batch
    valid = (zc[:, None] == zc[None, :]) & (ts[:, None] == ts[None, :])
    np.fill_diagonal(valid, False)
    same = zl[:, None] == zl[None, :]

    # AB's "contrast accuracy": the best positive against the best negative
    best_same = np.where(valid & same, sim, -10).max(axis=1, initial=-10)
    best_diff = np.where(valid & ~same, sim, -10).max(axis=1, initial=-10)
    both = (best_same >= -1) & (best_diff >= -1)
    total = int(both.sum())
    good = int((both & (best_diff < best_same)).sum())
    accuracy = 100 * good // total if total else -1

    # P of every compared pair (i, j): exp(sim_ij/T) over the other terms of column j
    exp_sim = np.where(valid, np.exp(sim / f32(layer.temperature)), f32(0))
    column = exp_sim.astype(np.float64).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = column[None, :] - exp_sim
        P = np.where(den != 0, exp_sim / den, 0.9999)
    P = np.where(P > 1, 0.9999, P)

    # the gradients (AB's grad_contrastive_loss_positive_f / _negative_f, "1 (70%)")
    T = float(layer.temperature)
    group = np.unique(zl, return_inverse=True)[1].reshape(-1)
    counts = np.bincount(group)           # N of AB's formulas: the embeddings of each label
    of_class = {c: np.flatnonzero(zc == c) for c in np.unique(zc)}
    grad = np.zeros((M, E), np.float64)
    skipped = 0
    for i in range(M):
        positives = np.flatnonzero(same[i])
        positives = positives[positives != i]
        if not positives.size:
            continue
        if norms[i] == 0:
            skipped += 1
            continue
        mult = 1.0 / ((counts[group[i]] - 1) * T * float(np.float32(norms[i])))
        pulled = positives[valid[i, positives]]
        if pulled.size:
            s, p = sim[i, pulled].astype(np.float64), P[i, pulled]
            grad[i] -= mult * ((s[:, None] * z64[i] - z64[pulled]) * (1 - p)[:, None]).sum(0)
        counter, neg_max = 0, layer.contrastive_neg_max
        for j in positives:
            k = of_class.get(zc[j], idx[:0])
            k = k[(k != i) & (k != j) & (zl[k] != zl[i])]
            if not k.size:
                continue
            applied = valid[i, k]
            reached = applied & (counter + np.arange(1, k.size + 1) >= neg_max)
            stop = np.flatnonzero(reached)
            if stop.size:
                applied = applied & (np.arange(k.size) <= stop[0])
            counter += k.size
            k = k[applied]
            s, p = sim[i, k].astype(np.float64), P[i, k]
            grad[i] -= mult * ((z64[k] - s[:, None] * z64[i]) * p[:, None]).sum(0)
            if stop.size:
                break

    d = delta.reshape(N, -1, hw)
    for m in range(E):
        d[b_of, a_of * E + m, loc] = grad[:, m]
    if layer.cls_normalizer != 1:
        delta *= f32(layer.cls_normalizer)
    np.clip(delta, -f32(layer.max_delta), f32(layer.max_delta), out=delta)
    cost = float(np.square(delta, dtype=np.float64).sum())
    stats = {"accuracy": accuracy, "pairs": int(valid.sum()), "embeddings": int(M),
             "skipped": skipped, "cost": cost}
    return delta.reshape(x.shape), cost, stats
