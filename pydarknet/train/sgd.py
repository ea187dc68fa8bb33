"""Darknet's SGD update with momentum and weight decay, one per iteration.

For every trainable parameter p with accumulated delta g (Darknet's sign, summed over the whole
batch) and momentum buffer u:   u += g;  u += -decay*B*p (weights only);  p += lr/B * u;
u *= momentum, where B = batch (all subdivisions' images). The backend's ``sgd_update`` does
it in one pass.

With the [net] option loss_scale = S (Darknet's mixed precision: the yolo deltas arrive scaled
by S), Darknet's GPU build divides the rate by S and multiplies the decay by S, so that the
update is the unscaled one; its connected layer instead divides its accumulated updates
(gradients and momentum) by S and updates with the plain rate, and its [local] layer keeps
the scale (``Layer.loss_scale_undone``).
"""

import numpy as np


def update_layer(backend, layer, rate, momentum, decay, batch, loss_scale=1.0, adam=None):
    """One layer's update: SGD, or with ``adam`` (B1, B2, eps, t) for a layer built with
    ``adam`` Adam (:func:`adam_update`); AB's GPU build's gradient centralisation before it
    (``grad_centr``) and weight clipping after it (``clip``)."""
    use_adam = adam is not None and getattr(layer, "adam", 0)
    if layer.layer_type in NAN_RESET and "weights" in layer.grads:
        reset_non_finite_weights(backend, layer, use_adam)
    if getattr(layer, "grad_centr", 0) and getattr(layer, "batch_normalize", 0):
        centralize_weight_updates(backend, layer, fold=not use_adam)
    if getattr(layer, "update_clamp", 0):
        clamp_weight_updates(backend, layer)
    if use_adam:
        adam_update(backend, layer, rate, decay, batch, loss_scale, *adam)
    else:
        sgd_update(backend, layer, rate, momentum, decay, batch, loss_scale)
    if getattr(layer, "clip", 0) and layer.layer_type in CLIPPED:
        clip_weights(backend, layer)


# the layers whose update AB's GPU build ends by clipping the weights to +-clip
CLIPPED = ("convolutional", "implicit")
# the layers whose update AB's GPU build starts with reset_nan_and_inf / fix_nan_and_inf
NAN_RESET = ("convolutional", "shortcut", "implicit")


def reset_non_finite_weights(backend, layer, adam):
    """AB's GPU update of a [convolutional], weighted [shortcut] or [implicit] layer starts by
    setting each NaN or inf weight update to 0 (reset_nan_and_inf) and each NaN or inf weight
    to 1 / (its index + 1) (fix_nan_and_inf): a delta that overflowed (an fp16 one scaled by
    loss_scale, say) costs those weights a step, not the run. The update is AB's
    weight_updates: the gradient and, with SGD, the momentum buffer it is added to. Only
    where something is not finite do the arrays go to the host."""
    B = backend
    g, w = layer.grads["weights"], layer.params["weights"]
    u = None if adam else layer.momenta["weights"]
    if B.all_finite(g) and (u is None or B.all_finite(u)) and B.all_finite(w):
        return
    gh = B.to_numpy(g)
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~np.isfinite(gh if u is None else gh + B.to_numpy(u))
    if bad.any():
        for buf in (g,) if u is None else (g, u):
            h = B.to_numpy(buf)
            h[bad] = 0
            B.copy_from_numpy(buf, h)
    wh = B.to_numpy(w)
    broken = np.flatnonzero(~np.isfinite(wh))
    if broken.size:
        flat = wh.reshape(-1)
        flat[broken] = np.float32(1) / (broken.astype(np.float32) + np.float32(1))
        B.copy_from_numpy(w, wh)


def centralize_weight_updates(backend, layer, fold):
    """AB's gradient_centralization_gpu ([convolutional] grad_centr=1 with batch norm): each
    filter's weight update less its mean, where a filter holds a multiple of 32 values (AB's
    warp-wide kernel does nothing otherwise). The update is AB's weight_updates: with SGD the
    momentum buffer plus this iteration's gradient (``fold``: added into the buffer here, the
    gradient zeroed), with Adam the gradient."""
    grad, momentum = layer.grads["weights"], layer.momenta["weights"]
    if (grad.size // layer.n) % 32:
        return
    if fold:
        backend.axpy(np.float32(1.0), grad, momentum)
        backend.fill(grad, 0)
    target = momentum if fold else grad
    u = backend.to_numpy(target).reshape(layer.n, -1)
    u -= u.mean(axis=1, dtype=np.float64, keepdims=True).astype(np.float32)
    backend.copy_from_numpy(target, u.reshape(target.shape))


def clamp_weight_updates(backend, layer):
    """AB's constrain_ongpu before the step (``update_clamp``, a weighted [shortcut]'s 1): the
    accumulated weight update (momentum plus this iteration's gradient, folded into the
    momentum buffer) into [-update_clamp, update_clamp]."""
    grad, u = layer.grads["weights"], layer.momenta["weights"]
    backend.axpy(np.float32(1.0), grad, u)
    backend.fill(grad, 0)
    _clamp(backend, u, layer.update_clamp)


def clip_weights(backend, layer):
    """AB's constrain_ongpu after the update: the weights into [-clip, clip]."""
    _clamp(backend, layer.params["weights"], layer.clip)


def _clamp(backend, array, limit):
    """``array`` into [-limit, limit], on the host (a handful of values a layer)."""
    a = backend.to_numpy(array)
    np.clip(a, np.float32(-limit), np.float32(limit), out=a)
    backend.copy_from_numpy(array, a)


def sgd_update(backend, layer, rate, momentum, decay, batch, loss_scale=1.0):
    """Darknet's SGD with momentum and weight decay on every trainable parameter."""
    lr = rate * layer.learning_rate_scale
    decay_scale = 1.0
    if loss_scale != 1.0:
        if layer.loss_scale_undone == "updates":
            for name in layer.grads:
                for buf in (layer.grads[name], layer.momenta[name]):
                    backend.axpy(np.float32(1.0 / loss_scale - 1.0), buf, buf)
        elif layer.loss_scale_undone == "rate":
            lr /= loss_scale
            decay_scale = loss_scale
    step = np.float32(np.float32(lr) / batch)
    for name, grad in layer.grads.items():
        backend.sgd_update(layer.params[name], layer.momenta[name], grad, step,
                           np.float32(-decay * batch * decay_scale), np.float32(momentum),
                           name in layer.decayed)


def adam_update(backend, layer, rate, decay, batch, loss_scale, b1, b2, eps, t):
    """AB's adam_update_gpu on every parameter of the layer (weights, biases and batch-norm
    scales alike, all with weight decay): m = B1 m + (1 - B1) g, v = B2 v + (1 - B2) g^2 with
    g = the accumulated delta - decay * batch * p, then p += rate * m^ / (sqrt(v^) + eps) with
    m^ = m / (1 - B1^t), v^ = v / (1 - B2^t), t the update's number. The rate is not divided
    by the batch; with loss_scale it is divided by it (Adam does not undo the scale). Float32
    in Darknet's order; on the host (a device's arrays go there and back)."""
    f32 = np.float32
    lr = f32(f32(f32(rate) * f32(layer.learning_rate_scale)) / f32(loss_scale))
    b1, b2, eps = f32(b1), f32(b2), f32(eps)
    minus_decay = f32(-f32(decay) * batch)
    bias1 = f32(1) - np.power(b1, f32(t))
    bias2 = f32(1) - np.power(b2, f32(t))
    for name, grad in layer.grads.items():
        p = backend.to_numpy(layer.params[name])
        m = backend.to_numpy(layer.momenta[name])
        v = backend.to_numpy(layer.momenta[f"{name}_v"])
        g = backend.to_numpy(grad) + minus_decay * p
        m *= b1
        v *= b2
        m += (f32(1) - b1) * g
        v += (f32(1) - b2) * (g * g)
        p += lr * (m / bias1) / (np.sqrt(v / bias2) + eps)
        for dst, src in ((layer.params[name], p), (layer.momenta[name], m),
                         (layer.momenta[f"{name}_v"], v)):
            backend.copy_from_numpy(dst, src)     # nothing to do on the CPU
