"""The backend op API: the small set of array operations every layer is written against.

A backend is a module exposing the functions below. Layers never touch raw memory; they
call these ops with arrays the backend allocates (``empty``/``zeros``). The CPU backend
(:mod:`pydarknet.backend.cpu`) implements them with numpy and the C core (``src_c/`` via
the Cython extension ``pydarknet.backend._cpu``); a CUDA backend implements the same names.

Conventions: float32, C-contiguous, NCHW. ``out`` arguments are written in full.
In-place ops modify and return their first argument.

Allocation
    empty(shape) / zeros(shape) -> array
    to_numpy(a) -> numpy array;  from_numpy(a) -> backend array

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

Pooling / resampling (``out`` preallocated)
    maxpool(x, out, size, stride_y, stride_x, pad)       Darknet's window: starts at -(pad//2)
    local_avgpool(x, out, size, stride_y, stride_x, pad) average over the in-image cells only
    global_avgpool(x[N,C,H,W], out[N,C,1,1])
    upsample(x, out, stride, scale)                      nearest-neighbour, out = scale * x[..]
    downsample_sum(x, out, stride, scale)                Darknet's upsample with negative stride

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
"""

# Darknet's activation names, in the order of the C core's enum (src_c/activations.h).
ACTIVATIONS = (
    "logistic", "relu", "relie", "linear", "ramp", "tanh", "plse", "revleaky", "leaky",
    "elu", "loggy", "stair", "hardtan", "lhtan", "selu", "gelu", "swish", "mish",
    "hard_mish", "relu6", "normalize_channels", "normalize_channels_softmax",
    "normalize_channels_softmax_maxval",
)
ACTIVATION_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}


def get_backend(device="cpu"):
    """Return the backend module for ``device`` ("cpu" or "cuda[:N]")."""
    if device in (None, "cpu"):
        from . import cpu
        return cpu
    if str(device).startswith("cuda"):
        raise NotImplementedError("the CUDA backend is not built yet; use device='cpu'")
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda:N'")
