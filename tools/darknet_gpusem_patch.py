"""Patch a copy of AB Darknet's source so that its CPU backward has the semantics of the
reference data's ``-gpusem`` runs (../shared/darknet-ref/README.md): Darknet's own formulas
with its CPU training bugs fixed, which is what pydarknet implements (AB's GPU build).

    git clone <AB darknet> /tmp/dn-gpusem && python tools/darknet_gpusem_patch.py /tmp/dn-gpusem
    cd /tmp/dn-gpusem && make LIBSO=1
    python tools/darknet_forward_oracle.py /tmp/dn-gpusem --fuzz-backward 0 500

The fixes (the README's numbering):
 2. every backward that writes the previous layer's delta adds into it instead of overwriting
    it ([convolutional]'s col2im, [batchnorm], [activation], [sam]'s `from` delta, [upsample]
    reverse=1, [reorg], [reorg3d], [normalization]), so skip connections' gradients arrive;
 4. batch-normalised layers accumulate their biases' gradient (before the BN transform);
 5. the BN delta divides by sqrt(var + eps), as the forward does.
(1, stale deltas, and 3, [connected] never updated, do not show in one backward pass:
tools/darknet_iteration_oracle.c, which trains whole iterations, fixes them itself.)
And the updates as AB's GPU build makes them (update_*_layer_gpu): a [connected] or
[batchnorm] layer's learning_rate=, a weighted [shortcut]'s update clamped without decay,
grad_centr, Adam (AB's CPU build has none) and clip on [convolutional] layers, clip on
[implicit] ones, each starting, as AB's GPU updates of those layers and weighted
[shortcut]s do, with NaN or inf weight updates set to 0 and NaN or inf weights to
1 / (index + 1) (reset_nan_and_inf, fix_nan_and_inf).
And as AB's GPU build: a normalised [shortcut] weight's gradient scaled by the normalised
weight w (relu) or w(1 - w) (softmax); [scale_channels] scale_wh=1's scales' delta divided by
the map's size (w x h); the revleaky and normalize_channels* gradients.
And as AB's GPU build: a [maxpool] window wholly in the padding (index -1) passes no delta
back (AB's CPU backward writes it before the delta's buffer); resize_network gives a
[batchnorm] layer's normalisation buffers the new size (AB's CPU resize keeps the old).
Beyond the -gpusem fixes, where AB's CPU and GPU builds both differ from the true gradient
and pydarknet takes the true one (README: "deliberate differences"):
 - [local_avgpool] divides each output's delta among the inputs its forward averaged;
 - a layer sharing another's weights (share_index) keeps its own batch statistics.
Each edit must match the source exactly once; a Darknet whose code moved fails loudly.
"""

import pathlib
import sys

# a scratch buffer for "compute, then add" (static: each file gets its own)
SCRATCH = """
#include <stdlib.h>
static float *gpusem_scratch(size_t n)
{
    static float *buffer;
    static size_t size;
    if (n > size) { buffer = realloc(buffer, n * sizeof(float)); size = n; }
    return buffer;
}
"""

# AB's adam_update_gpu (blas_kernels.cu) on the CPU: AB's CPU build has no Adam
ADAM = """
static void gpusem_adam(float *w, float *d, float *m, float *v, convolutional_layer l,
                        float decay, float rate, int n, int batch)
{
    int i;
    for (i = 0; i < n; ++i) {
        m[i] *= l.B1;
        v[i] *= l.B2;
        d[i] += -decay*batch*w[i];
        m[i] += (1 - l.B1)*d[i];
        d[i] *= d[i];
        v[i] += (1 - l.B2)*d[i];
        float mhat = m[i] / (1.f - powf(l.B1, l.t));
        float vhat = v[i] / (1.f - powf(l.B2, l.t));
        w[i] = w[i] + rate*mhat / (sqrtf(vhat) + l.eps);
        d[i] = 0;
    }
}
"""

# [net] loss_scale=S in AB's GPU updates (the iteration oracle sets it from the cfg): the
# CPU update functions take no network, so they read it here
LOSS_SCALE = "extern float gpusem_loss_scale;\n"

# AB's GPU updates of [convolutional], weighted [shortcut] and [implicit] layers start with
# reset_nan_and_inf on the weight updates and fix_nan_and_inf on the weights
NAN_FIX = """
#include <math.h>
static void gpusem_reset_and_fix(float *updates, float *weights, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        if (isnan(updates[i]) || isinf(updates[i])) updates[i] = 0;
        if (isnan(weights[i]) || isinf(weights[i])) weights[i] = 1.0f / (fabs((float)i) + 1);
    }
}
"""

EDITS = {
    "src/convolutional_layer.c": [
        # pydarknet's choice: a layer that shares another's weights (share_index) shares its
        # batch norm's scales and rolling statistics but keeps its own batch statistics; in
        # AB's builds the sharer's forward overwrites the shared layer's, whose backward
        # then normalises its delta with the sharer's mean and variance
        ("            l.mean = l.share_layer->mean;\n"
         "            l.variance = l.share_layer->variance;\n",
         "            l.mean = (float*)xcalloc(n, sizeof(float));\n"
         "            l.variance = (float*)xcalloc(n, sizeof(float));\n"),
        ("void backward_convolutional_layer(convolutional_layer l, network_state state)\n",
         SCRATCH + "void backward_convolutional_layer(convolutional_layer l, "
                   "network_state state)\n"),
        ("                    state.delta + (i*l.groups + j)* (l.c / l.groups)*l.h*l.w); "
         "// output (delta)\n",
         "                    gpusem_scratch((l.c / l.groups)*l.h*l.w));\n"
         "                axpy_cpu((l.c / l.groups)*l.h*l.w, 1, gpusem_scratch(0), 1,\n"
         "                    state.delta + (i*l.groups + j)* (l.c / l.groups)*l.h*l.w, 1);\n"),
        # AB's GPU update: grad_centr=1, [net] adam=1 (adam_update_gpu) and clip=C
        ("void update_convolutional_layer(convolutional_layer l, int batch, "
         "float learning_rate_init, float momentum, float decay)\n",
         "float gpusem_loss_scale = 1;\n" + ADAM + NAN_FIX +
         "void update_convolutional_layer(convolutional_layer l, int batch, "
         "float learning_rate_init, float momentum, float decay)\n"),
        # loss_scale: the rate divided by S, the decay multiplied by it (Adam's is not)
        ("    float learning_rate = learning_rate_init*l.learning_rate_scale;\n"
         "    //float momentum = a.momentum;\n",
         "    float learning_rate = learning_rate_init*l.learning_rate_scale / "
         "gpusem_loss_scale;\n"
         "    gpusem_reset_and_fix(l.weight_updates, l.weights, l.nweights);\n"
         "    //float momentum = a.momentum;\n"),
        ("    axpy_cpu(l.nweights, -decay*batch, l.weights, 1, l.weight_updates, 1);\n",
         "    int f_size = l.size*l.size*(l.c / l.groups);\n"
         "    if (l.grad_centr && l.batch_normalize && f_size % 32 == 0) {\n"
         "        int f, k;\n"
         "        for (f = 0; f < l.n; ++f) {\n"
         "            float mean = 0, *u = l.weight_updates + f*f_size;\n"
         "            for (k = 0; k < f_size; ++k) mean += u[k];\n"
         "            mean /= f_size;\n"
         "            for (k = 0; k < f_size; ++k) u[k] -= mean;\n"
         "        }\n"
         "    }\n"
         "    if (l.adam) {\n"
         "        gpusem_adam(l.weights, l.weight_updates, l.m, l.v, l, decay, "
         "learning_rate, l.nweights, batch);\n"
         "        gpusem_adam(l.biases, l.bias_updates, l.bias_m, l.bias_v, l, decay, "
         "learning_rate, l.n, batch);\n"
         "        if (l.scales) gpusem_adam(l.scales, l.scale_updates, l.scale_m, l.scale_v, "
         "l, decay, learning_rate, l.n, batch);\n"
         "        if (l.clip) constrain_cpu(l.nweights, l.clip, l.weights);\n"
         "        return;\n"
         "    }\n"
         "    axpy_cpu(l.nweights, -decay*batch*gpusem_loss_scale, l.weights, 1, "
         "l.weight_updates, 1);\n"),
        ("        scal_cpu(l.n, momentum, l.scale_updates, 1);\n    }\n}\n",
         "        scal_cpu(l.n, momentum, l.scale_updates, 1);\n    }\n"
         "    if (l.clip) constrain_cpu(l.nweights, l.clip, l.weights);\n}\n"),
    ],
    "src/batchnorm_layer.c": [
        ("delta[index] * 1./(sqrt(variance[f]) + .00001f)",
         "delta[index] * 1./sqrt(variance[f] + .00001f)"),
        ("void backward_batchnorm_layer(const layer l, network_state state)\n{\n",
         "void backward_bias(float *bias_updates, float *delta, int batch, int n, int size);\n"
         "void backward_batchnorm_layer(const layer l, network_state state)\n{\n"
         "    backward_bias(l.bias_updates, l.delta, l.batch, l.out_c, l.out_w*l.out_h);\n"),
        ("if(l.type == BATCHNORM) copy_cpu(l.outputs*l.batch, l.delta, 1, state.delta, 1);",
         "if(l.type == BATCHNORM) axpy_cpu(l.outputs*l.batch, 1, l.delta, 1, state.delta, 1);"),
        # AB's GPU update: the layer's learning_rate= scales its rate
        ("void update_batchnorm_layer(layer l, int batch, float learning_rate, float momentum, "
         "float decay)\n{\n",
         LOSS_SCALE + "void update_batchnorm_layer(layer l, int batch, float learning_rate, "
         "float momentum, float decay)\n{\n"
         "    learning_rate = learning_rate*l.learning_rate_scale / gpusem_loss_scale;\n"),
        # AB's GPU resize reallocates the normalisation's buffers; its CPU one keeps them at
        # the old size, and a larger size writes past them
        ("    l->delta = (float*)realloc(l->delta, output_size * sizeof(float));\n",
         "    l->delta = (float*)realloc(l->delta, output_size * sizeof(float));\n"
         "    l->x = (float*)realloc(l->x, output_size * sizeof(float));\n"
         "    l->x_norm = (float*)realloc(l->x_norm, output_size * sizeof(float));\n"),
    ],
    "src/activation_layer.c": [
        ("    copy_cpu(l.outputs*l.batch, l.delta, 1, state.delta, 1);\n}",
         "    axpy_cpu(l.outputs*l.batch, 1, l.delta, 1, state.delta, 1);\n}"),
    ],
    "src/sam_layer.c": [
        ("from_delta[i] = state.input[i] * l.delta[i];",
         "from_delta[i] += state.input[i] * l.delta[i];"),
    ],
    "src/upsample_layer.c": [
        ("void backward_upsample_layer(const layer l, network_state state)\n",
         SCRATCH + "void backward_upsample_layer(const layer l, network_state state)\n"),
        ("upsample_cpu(l.delta, l.out_w, l.out_h, l.c, l.batch, l.stride, 1, l.scale, "
         "state.delta);",
         "upsample_cpu(l.delta, l.out_w, l.out_h, l.c, l.batch, l.stride, 1, l.scale, "
         "gpusem_scratch(l.inputs*l.batch));\n"
         "        axpy_cpu(l.inputs*l.batch, 1, gpusem_scratch(0), 1, state.delta, 1);"),
    ],
    "src/reorg_layer.c": [
        ("void backward_reorg_layer(const layer l, network_state state)\n{\n",
         SCRATCH + "void backward_reorg_layer(const layer l, network_state state)\n{\n"
                   "    float *into = state.delta;\n"
                   "    state.delta = gpusem_scratch(l.inputs*l.batch);\n"),
        ("        reorg_cpu(l.delta, l.out_w, l.out_h, l.out_c, l.batch, l.stride, 1, "
         "state.delta);\n    }\n",
         "        reorg_cpu(l.delta, l.out_w, l.out_h, l.out_c, l.batch, l.stride, 1, "
         "state.delta);\n    }\n"
         "    axpy_cpu(l.inputs*l.batch, 1, state.delta, 1, into, 1);\n"),
    ],
    # AB's GPU build scales a normalised [shortcut] weight's gradient by the normalised
    # weight (relu) or w(1 - w) (softmax); its CPU build leaves the factor at 1
    "src/blas.c": [
        ("            delta_out[id] += delta_in[id] * w; // [0 or c or (c, h ,w)]\n",
         "            if (weights_normalization == RELU_NORMALIZATION) grad = w;\n"
         "            else if (weights_normalization == SOFTMAX_NORMALIZATION) grad = w*(1 - w);\n"
         "            delta_out[id] += delta_in[id] * w; // [0 or c or (c, h ,w)]\n"),
        ("                    layer_delta[add_index] += delta_in[id] * w; "
         "// [0 or c or (c, h ,w)]\n",
         "                    if (weights_normalization == RELU_NORMALIZATION) grad = w;\n"
         "                    else if (weights_normalization == SOFTMAX_NORMALIZATION) "
         "grad = w*(1 - w);\n"
         "                    layer_delta[add_index] += delta_in[id] * w; "
         "// [0 or c or (c, h ,w)]\n"),
    ],
    # AB's GPU build divides the delta of scale_wh's per-pixel scales by the map's size
    "src/scale_channels_layer.c": [
        ("state.delta[input_index] += l.delta[i] * from_output[i];// / l.out_c;",
         "state.delta[input_index] += l.delta[i] * from_output[i] / channel_size;"),
    ],
    # AB's GPU gradients of revleaky (divides by leaky's) and normalize_channels* (element-
    # wise: y where y > 0; softmax y(1 - y), non-finite 0); its CPU ones differ
    "src/activations.c": [
        ("        case REVLEAKY:\n        case LEAKY:\n            return leaky_gradient(x);",
         "        case REVLEAKY:\n            return 1 / leaky_gradient(x);\n"
         "        case LEAKY:\n            return leaky_gradient(x);"),
        ("                float d = delta[index];\n"
         "                d = d * grad;\n"
         "                delta[index] = d;\n",
         "                float d = delta[index] * (x[index] * (1 - x[index]));\n"
         "                if (isnan(d) || isinf(d)) d = 0;\n"
         "                delta[index] = d;\n"),
        ("                    float d = delta[index];\n"
         "                    d = d * grad;\n"
         "                    delta[index] = d;\n",
         "                    delta[index] = delta[index] * x[index];\n"),
    ],
    "src/reorg_old_layer.c": [      # [reorg] (reorg_layer.c is [reorg3d])
        ("void backward_reorg_old_layer(const layer l, network_state state)\n{\n",
         SCRATCH + "void backward_reorg_old_layer(const layer l, network_state state)\n{\n"
                   "    float *into = state.delta;\n"
                   "    state.delta = gpusem_scratch(l.inputs*l.batch);\n"),
        ("        reorg_cpu(l.delta, l.w, l.h, l.c, l.batch, l.stride, 1, state.delta);\n"
         "    }\n",
         "        reorg_cpu(l.delta, l.w, l.h, l.c, l.batch, l.stride, 1, state.delta);\n"
         "    }\n"
         "    axpy_cpu(l.inputs*l.batch, 1, state.delta, 1, into, 1);\n"),
    ],
    "src/normalization_layer.c": [
        ("void backward_normalization_layer(const layer layer, network_state state)\n",
         SCRATCH + "void backward_normalization_layer(const layer layer, network_state state)\n"),
        ("    pow_cpu(w*h*c*layer.batch, -layer.beta, layer.norms, 1, state.delta, 1);\n"
         "    mul_cpu(w*h*c*layer.batch, layer.delta, 1, state.delta, 1);\n",
         "    float *d = gpusem_scratch(w*h*c*layer.batch);\n"
         "    pow_cpu(w*h*c*layer.batch, -layer.beta, layer.norms, 1, d, 1);\n"
         "    mul_cpu(w*h*c*layer.batch, layer.delta, 1, d, 1);\n"
         "    axpy_cpu(w*h*c*layer.batch, 1, d, 1, state.delta, 1);\n"),
    ],
    # not a -gpusem fix but pydarknet's choice: [local_avgpool]'s true gradient. The forward
    # divides by the inputs of the window inside the image; AB's CPU backward divides by
    # size*size, its GPU kernel gives each input the mean delta of the outputs near it
    "src/maxpool_layer.c": [
        ("void backward_local_avgpool_layer(const maxpool_layer l, network_state state)\n",
         "static int gpusem_window(maxpool_layer l, int i, int j)\n"
         "{\n"
         "    int n, m, counter = 0;\n"
         "    for (n = 0; n < l.size; ++n) for (m = 0; m < l.size; ++m) {\n"
         "        int cur_h = -l.pad / 2 + i*l.stride_y + n;\n"
         "        int cur_w = -l.pad / 2 + j*l.stride_x + m;\n"
         "        counter += cur_h >= 0 && cur_h < l.h && cur_w >= 0 && cur_w < l.w;\n"
         "    }\n"
         "    return counter;\n"
         "}\n"
         "void backward_local_avgpool_layer(const maxpool_layer l, network_state state)\n"),
        ("if (valid) state.delta[index] += l.delta[out_index] / (l.size*l.size);",
         "if (valid) state.delta[index] += l.delta[out_index] / gpusem_window(l, i, j);"),
        # a [maxpool] window wholly in the padding keeps index -1 (its -FLT_MAX output has no
        # input): the CPU backward adds its delta at state.delta[-1], before the buffer (the
        # fuzzer's backward seed 30087: malloc's heap corrupted); the GPU kernel adds it nowhere
        ("        state.delta[index] += l.delta[i];\n",
         "        if (index >= 0) state.delta[index] += l.delta[i];\n"),
    ],
    # The updates as AB's GPU build makes them (update_*_layer_gpu; the training iteration
    # oracle, tools/darknet_iteration_fuzz.py): a [connected] or [batchnorm] layer's
    # learning_rate= scales its rate; a weighted [shortcut]'s update has no decay and is
    # clamped to [-1, 1]; a batch-normalised [convolutional] with grad_centr=1 centres each
    # filter's update where the filter holds a multiple of 32 values; clip=C clamps the
    # weights of [convolutional] and [implicit] layers after the step
    "src/connected_layer.c": [
        ("void update_connected_layer(connected_layer l, int batch, float learning_rate, "
         "float momentum, float decay)\n{\n",
         LOSS_SCALE + "void update_connected_layer(connected_layer l, int batch, "
         "float learning_rate, float momentum, float decay)\n{\n"
         "    learning_rate *= l.learning_rate_scale;\n"
         "    if (gpusem_loss_scale != 1.0) {     /* the updates (momentum too) over S */\n"
         "        scal_cpu(l.inputs*l.outputs, 1.0 / gpusem_loss_scale, l.weight_updates, 1);\n"
         "        scal_cpu(l.outputs, 1.0 / gpusem_loss_scale, l.bias_updates, 1);\n"
         "        if (l.batch_normalize)\n"
         "            scal_cpu(l.outputs, 1.0 / gpusem_loss_scale, l.scale_updates, 1);\n"
         "    }\n"),
    ],
    "src/shortcut_layer.c": [
        ("        axpy_cpu(l.nweights, -decay*batch, l.weights, 1, l.weight_updates, 1);\n",
         "        constrain_cpu(l.nweights, 1, l.weight_updates);\n"),
        ("void update_shortcut_layer(layer l, int batch, float learning_rate_init, "
         "float momentum, float decay)\n{\n"
         "    if (l.nweights > 0) {\n"
         "        float learning_rate = learning_rate_init*l.learning_rate_scale;\n",
         LOSS_SCALE + NAN_FIX + "void update_shortcut_layer(layer l, int batch, "
         "float learning_rate_init, float momentum, float decay)\n{\n"
         "    if (l.nweights > 0) {\n"
         "        float learning_rate = learning_rate_init*l.learning_rate_scale / "
         "gpusem_loss_scale;\n"
         "        gpusem_reset_and_fix(l.weight_updates, l.weights, l.nweights);\n"),
    ],
    "src/representation_layer.c": [
        ("void update_implicit_layer(layer l, int batch, float learning_rate_init, "
         "float momentum, float decay)\n{\n"
         "    float learning_rate = learning_rate_init*l.learning_rate_scale;\n",
         LOSS_SCALE + NAN_FIX + "void update_implicit_layer(layer l, int batch, "
         "float learning_rate_init, float momentum, float decay)\n{\n"
         "    float learning_rate = learning_rate_init*l.learning_rate_scale / "
         "gpusem_loss_scale;\n"
         "    gpusem_reset_and_fix(l.weight_updates, l.weights, l.nweights);\n"),
        ("    axpy_cpu(l.nweights, -decay*batch, l.weights, 1, l.weight_updates, 1);\n"
         "    axpy_cpu(l.nweights, learning_rate / batch, l.weight_updates, 1, l.weights, 1);\n"
         "    scal_cpu(l.nweights, momentum, l.weight_updates, 1);\n\n}",
         "    axpy_cpu(l.nweights, -decay*batch*gpusem_loss_scale, l.weights, 1, "
         "l.weight_updates, 1);\n"
         "    axpy_cpu(l.nweights, learning_rate / batch, l.weight_updates, 1, l.weights, 1);\n"
         "    scal_cpu(l.nweights, momentum, l.weight_updates, 1);\n\n}"),
        ("    scal_cpu(l.nweights, momentum, l.weight_updates, 1);\n\n}",
         "    scal_cpu(l.nweights, momentum, l.weight_updates, 1);\n"
         "    if (l.clip) constrain_cpu(l.nweights, l.clip, l.weights);\n}"),
    ],
    # The heads' deltas as AB's GPU build sends them back: [yolo]'s times loss_scale and its
    # delta_normalizer, [Gaussian_yolo]'s times its delta_normalizer, [softmax]'s times
    # loss_scale (the CPU build sends them unscaled)
    "src/yolo_layer.c": [
        ("   axpy_cpu(l.batch*l.inputs, 1, l.delta, 1, state.delta, 1);\n",
         "   axpy_cpu(l.batch*l.inputs, state.net.loss_scale * l.delta_normalizer, l.delta, 1, "
         "state.delta, 1);\n"),
    ],
    "src/gaussian_yolo_layer.c": [
        ("   axpy_cpu(l.batch*l.inputs, 1, l.delta, 1, state.delta, 1);\n",
         "   axpy_cpu(l.batch*l.inputs, l.delta_normalizer, l.delta, 1, state.delta, 1);\n"),
    ],
    "src/softmax_layer.c": [
        ("    axpy_cpu(l.inputs*l.batch, 1, l.delta, 1, net.delta, 1);\n",
         "    axpy_cpu(l.inputs*l.batch, net.net.loss_scale, l.delta, 1, net.delta, 1);\n"),
    ],
}


def patch(root):
    root = pathlib.Path(root)
    for name, edits in EDITS.items():
        path = root / name
        text = path.read_text()
        for old, new in edits:
            if text.count(old) != 1:
                sys.exit(f"{path}: expected the text below exactly once, found it "
                         f"{text.count(old)} times (another Darknet version?):\n{old}")
            text = text.replace(old, new)
        path.write_text(text)
        print(f"patched {path} ({len(edits)} edits)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    patch(sys.argv[1])
