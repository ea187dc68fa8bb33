"""The backend op API: the small set of array operations every layer is written against.

A backend is an object with the methods below (:func:`get_backend` gives one per device).
Layers never touch raw memory; they call these ops with arrays the backend allocates
(``empty``/``zeros``). Every op checks its arguments once, in :class:`.base.Backend`, and then
runs the backend's unchecked kernel ``_<op>``: :class:`.cpu.CpuBackend` with numpy and the C
core (``src_c/`` via the Cython extension ``pydarknet.backend._cpu``), :class:`.cuda.CudaBackend`
with the kernels of ``cuda/*.cu``, cuBLAS and cuDNN.

Conventions: float32, C-contiguous, NCHW. ``out`` arguments are written in full.
In-place ops modify and return their first argument.

Backend arrays need only what both numpy arrays and device arrays have: ``shape``,
``dtype``, ``size``, ``ndim`` and ``reshape`` (a view, no copy). Layers do no arithmetic,
slicing or reductions on them: everything goes through the ops below. Host-side work
(losses against truths, rare layers) goes through ``to_numpy``/``copy_from_numpy``.

Allocation and transfer
    empty(shape, dtype=float32) / zeros(shape, dtype=float32) -> array
                                 (dtype float32, or int32 for indexes)
    to_numpy(a) -> numpy array   (CPU: the same array, no copy; CUDA: a host copy)
    from_numpy(a) -> backend array with a's values (CPU: no copy when already float32 C-order)
    copy_from_numpy(dst, src)    dst = src (a numpy array of dst's size); no-op when dst is src
    copy(dst, src)               dst = src, equal sizes (shapes may differ)
    fill(a, value)               a[...] = value
    axpy(alpha, x, y)            y += alpha * x, equal sizes
    all_finite(a) -> bool        no NaN or inf in a
    synchronize()                wait until queued device work is done (CPU: nothing)

Convolution / products
    conv2d(x[N,C,H,W], w[F,C//groups,kh,kw], out[N,F,OH,OW], stride_y, stride_x,
           pad_y, pad_x, dilation, groups)
        Darknet's im2col convolution: out[n,f,oy,ox] = sum_{c,ky,kx} w[f,c,ky,kx] *
        x[n, g*C/groups + c, oy*stride_y - pad_y + ky*dilation, ox*stride_x - pad_x + kx*dilation]
        (zero outside the image). 1x1 stride-1 unpadded convs skip im2col.
    gemm(trans_a, trans_b, alpha, a, b, beta, c)
        c = alpha * op(a) @ op(b) + beta * c for 2-D arrays (row-major), through BLAS sgemm.

Elementwise / per channel (in place)
    activate(x, code)           Darknet activation ``code`` (see ACTIVATIONS), x any shape;
                                the cross-channel ones (normalize_channels*) need x NCHW.
    add_bias(x[N,C,...], b[C])
    batchnorm_inference(x[N,C,...], scales, mean, variance, biases, eps=1e-5)
        x = scales * (x - mean) / sqrt(variance + eps) + biases   (one fused pass)
    activate_copy(x, y, code)                    y = f(x), x kept (training keeps the
                                                 pre-activation for mish/swish gradients)
    bias_activate(x[N,C,...], b, code)           add_bias then activate (fused on the GPU)
    batchnorm_activate_inference(x, scales, mean, variance, biases, code, eps=1e-5)
                                                 batchnorm_inference then activate (fused)
    conv2d_activate_inference(x, w, out, stride_y, stride_x, pad_y, pad_x, dilation, groups,
                              biases, code, scales=None, mean=None, variance=None, eps=1e-5)
                                                 conv2d then batchnorm_activate_inference
                                                 (scales given) or bias_activate (fused on the
                                                 CPU where oneDNN runs the convolution)

Copies between layers' outputs (rows = images; per image the array is a flat vector)
    copy_rows(src, dst, count, src_offset, dst_offset, accumulate=False)
        for every image n: dst[n, dst_offset:+count] (= or +=) src[n, src_offset:+count]
        ([route] forward and backward, channel groups included)
    shortcut_add(out, add, m, spatial, weights=None, accumulate=True)
        out[n, :m] (+= or =) add[n, :m] * w, w = 1 (weights None), weights[0] (one weight),
        or weights[i // spatial] (one per channel); ``weights`` is a small host numpy vector

Layer-specific forward ops
    yolo_activate(x, out, anchors, entries, scale_x_y, new_coords)
        x, out [N, anchors*entries, H, W]; out = x with logistic on entries 0, 1 and 4..
        (not when new_coords), then entries 0, 1 scaled: v*scale_x_y - 0.5*(scale_x_y - 1)
    softmax(x, out, groups, temperature)   per image, each of ``groups`` equal runs of x:
                                           out = exp(v/t - max/t) / sum (Darknet's order)
    scale_channels(src[N,C,H,W], scale, out, scale_wh)
        out = src * scale, scale [N,C,1,1] per channel or [N,1,H,W] per pixel (scale_wh)
    sam(src, x, out)                       out = src * x elementwise

Pooling / resampling (``out`` preallocated)
    maxpool(x, out, size, stride_y, stride_x, pad)       Darknet's window: starts at -(pad//2)
    local_avgpool(x, out, size, stride_y, stride_x, pad) average over the in-image cells only
    global_avgpool(x[N,C,H,W], out[N,C,1,1])
    upsample(x, out, stride, scale, accumulate=False)   nearest-neighbour, out (=/+=) scale*x[..]
    downsample_sum(x, out, stride, scale, accumulate=False)
                                         Darknet's upsample with negative stride; out (=/+=)
                                         scale * the sum of each stride x stride block

Training (backward; gradients are Darknet "deltas" = -dLoss/d., accumulated with +=)
    conv2d_backward(x, w, delta, dx, dw, stride_y, stride_x, pad_y, pad_x, dilation, groups)
        dw += delta (x) im2col(x);  dx += col2im(w^T delta) unless dx is None
    gradient(delta, y, code, x=None)   delta *= f'(.) in place: from the activated output y, or
                                       from the pre-activation x for swish, mish and hard_mish
    maxpool_train(x, out, indexes, size, stride_y, stride_x, pad)   also writes the argmax
                                       (flat index into x's image, int32) of every output
    maxpool_backward(delta, indexes, dx)                dx[argmax] += delta
    local_avgpool_backward(delta, dx, size, stride_y, stride_x, pad)
    batchnorm_train(x, scales, biases, rolling_mean, rolling_variance, mean, variance, x_saved,
                    x_norm, keep)      normalise x [N,C,...] in place with batch statistics
                                       (variance 1/(N-1)), Darknet's float32 summation order;
                                       rolling = keep*rolling + (1-keep)*batch statistic
    batchnorm_backward(delta, x_saved, x_norm, mean, variance, scales, bias_grad, scale_grad)
                                       Darknet's batch-norm deltas (eps inside the root),
                                       bias and scale gradients accumulated
    backward_bias(bias_grad[C], delta[N,C,...])   bias_grad[c] += sum of delta[:, c]
    global_avgpool_backward(delta[N,C,1,1], dx[N,C,H,W])   dx += delta / (H*W)
    scale_channels_backward(delta, src, scale, dsrc, dscale, scale_wh)
                                       dsrc += delta*scale; dscale += sum(delta*src) over the
                                       spatial cells (over channels with scale_wh); either None
    sam_backward(delta, src, x, dx, dsrc)   dx += delta*src; dsrc += delta*x; either None
    sgd_update(p, u, g, step, neg_decay_b, momentum, decayed)
        Darknet's update, float32: u += g; u += neg_decay_b*p (if decayed); p += step*u;
        u *= momentum
"""

# Darknet's activation names, in the order of the C core's enum (src_c/activations.h).
ACTIVATIONS = (
    "logistic", "relu", "relie", "linear", "ramp", "tanh", "plse", "revleaky", "leaky",
    "elu", "loggy", "stair", "hardtan", "lhtan", "selu", "gelu", "swish", "mish",
    "hard_mish", "relu6", "normalize_channels", "normalize_channels_softmax",
    "normalize_channels_softmax_maxval",
)
ACTIVATION_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}

# Every op a backend implements (the docstring above says what each does).
OP_NAMES = (
    "empty", "zeros", "to_numpy", "from_numpy", "copy_from_numpy", "copy", "fill", "axpy",
    "all_finite", "synchronize",
    "conv2d", "gemm", "activate", "activate_copy", "add_bias", "batchnorm_inference", "bias_activate",
    "batchnorm_activate_inference", "conv2d_activate_inference", "copy_rows", "shortcut_add",
    "yolo_activate", "softmax",
    "scale_channels", "sam", "maxpool", "local_avgpool", "global_avgpool", "upsample",
    "downsample_sum",
    "conv2d_backward", "gradient", "maxpool_train", "maxpool_backward",
    "local_avgpool_backward", "batchnorm_train", "batchnorm_backward", "backward_bias",
    "global_avgpool_backward", "scale_channels_backward", "sam_backward", "sgd_update",
)


def parse_device(device):
    """"cpu" -> ("cpu", 0); "cuda", "cuda:N" or "gpu:N" -> ("cuda", N); else ValueError."""
    if device in (None, "cpu"):
        return "cpu", 0
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind in ("cuda", "gpu") and (index == "" or index.isdigit()):
        return "cuda", int(index or 0)
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda:N' (N = GPU index)")


_BACKENDS = {}                   # ("cpu", 0) / ("cuda", N) -> the backend object


def get_backend(device="cpu"):
    """The backend object for ``device``: "cpu", "cuda" / "cuda:N" (started on first use; the
    same object every time), or an object implementing the op API itself (tests use one)."""
    if hasattr(device, "conv2d") and hasattr(device, "to_numpy"):
        return device
    key = parse_device(device)
    if key[0] == "cuda":
        from . import cuda_device
        cuda_device.init(key[1])         # idempotent; raises naming the fix
    backend = _BACKENDS.get(key)
    if backend is None:
        if key[0] == "cpu":
            from .cpu import CpuBackend
            backend = CpuBackend()
        else:
            from .cuda import CudaBackend
            backend = CudaBackend(key[1])
        backend = _BACKENDS.setdefault(key, backend)
    return backend
