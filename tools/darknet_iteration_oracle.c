// AB Darknet's training iterations with the semantics of its GPU build, run by its CPU build
// patched by tools/darknet_gpusem_patch.py: the oracle of tools/darknet_iteration_fuzz.py.
// Usage: iterate CFG WEIGHTS INPUT TRUTH ITERATIONS OUT [WIDTH HEIGHT]
// INPUT: ITERATIONS x batch images (raw float32; batch = the cfg's mini-batch x subdivisions,
// in subdivision order); TRUTH: as many rows of the network's truths (a detector's boxes
// x y w h class id, a classifier's one-hot row), float32.
// WIDTH HEIGHT: after the first iteration the network is resized to them (resize_network,
// as random=1 training does), and the later iterations' images are of that size.
// Each iteration is train_network's, with what its GPU build does differently:
//  - every layer's delta is zeroed before each pass (forward_network_gpu; the CPU build
//    zeroes only the deltas of layers with l.train set: bug 1 of the reference README), and
//    a frozen [convolutional] runs its inference forward;
//  - the backward stops at stopbackward=1, and at stopbackward=N for the first N iterations
//    (backward_network_gpu; the CPU build stops at any stopbackward);
//  - the update is update_network_gpu's loop: a layer's update is skipped under
//    burnin_update, train_only_bn and dont_update, and every layer from the last
//    stopbackward=1 on that has an update is trained ([connected], [local], [implicit] never
//    set l.train: bug 3).
//  - the updates read [net] loss_scale, as the GPU build's take it (the patched CPU updates
//    read it from gpusem_loss_scale).
// As train_network, the moving average of the weights follows the update (ema_alpha), and
// the iterations go on from the weights file's (its images seen).
// Writes OUT.K.weights after iteration K (1, 2, ...) and OUT.loss: each iteration's loss and
// learning rate (float32 pairs).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "darknet.h"
#include "parser.h"
#include "network.h"

static float *read_floats(const char *path, size_t n) {
    float *x = calloc(n + 1, sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!f || fread(x, sizeof(float), n, f) != n) { fprintf(stderr, "short %s\n", path); exit(1); }
    fclose(f);
    return x;
}

// forward_network, with forward_convolutional_layer_gpu's inference forward of a frozen
// [convolutional] (l.train 0: before the last stopbackward=1; AB's CPU forward normalises it
// on batch statistics, into buffers its training parse never allocated)
static void forward(network net, network_state state) {
    int i;
    state.workspace = net.workspace;
    for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        network_state s = state;
        s.index = i;
        if (l.type == CONVOLUTIONAL && !l.train) s.train = 0;
        l.forward(l, s);
        state.input = l.output;
    }
}

// backward_network with backward_network_gpu's stopbackward; the first layer's backward gets
// an input delta (AB's [reorg], patched to add into it, would write through NULL)
static void backward(network net, network_state state, float *input_delta) {
    int i;
    float *input = state.input;
    state.workspace = net.workspace;
    for (i = net.n - 1; i >= 0; --i) {
        layer l = net.layers[i];
        state.index = i;
        state.input = i ? net.layers[i - 1].output : input;
        state.delta = i ? net.layers[i - 1].delta : input_delta;
        if (l.stopbackward == 1 || l.stopbackward > get_current_iteration(net)) break;
        if (!l.onlyforward) l.backward(l, state);
    }
}

// [net] loss_scale, which the patched CPU updates read (their GPU versions take it)
extern float gpusem_loss_scale;

// update_network_gpu's loop over the (patched) CPU updates
static void update(network net) {
    int i;
    int iteration_num = (int)(*net.seen / (net.batch * net.subdivisions));
    float rate = get_current_rate(net);
    for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        if (!l.train) continue;
        l.t = get_current_batch(net);
        if (l.burnin_update && l.burnin_update * net.burn_in > iteration_num) continue;
        if (l.train_only_bn) continue;
        if (l.update && l.dont_update < iteration_num)
            l.update(l, net.batch * net.subdivisions, rate, net.momentum, net.decay);
    }
}

// train_network's moving average of the convolutions' weights ([net] ema_alpha): from
// max_batches / 2 on, set to the weights, then averaged after every update up to
// max_batches - 1000, where the weights are replaced by the averages
static void moving_average(network net) {
    int it = *net.cur_iteration, apply_point = net.max_batches - 1000;
    if (!net.ema_alpha || it < net.max_batches / 2) return;
    if (!is_ema_initialized(net)) ema_update(net, 0);
    if (it == apply_point) ema_apply(net);
    else if (it < apply_point) ema_update(net, net.ema_alpha);
}

int main(int argc, char **argv) {
    int i, k, s;
    if (argc != 7 && argc != 9) {
        fprintf(stderr, "usage: iterate CFG WEIGHTS INPUT TRUTH ITERATIONS OUT [WIDTH HEIGHT]\n");
        return 2;
    }
    network net = parse_network_cfg_custom(argv[1], 0, 0);
    gpusem_loss_scale = net.loss_scale;
    load_weights(&net, argv[2]);
    // Darknet sizes its workspace without the blurs of antialiasing= (they write past it)
    net.workspace = calloc((size_t)1 << 24, sizeof(float));
    int iterations = atoi(argv[5]), rows = net.batch * net.subdivisions, truths = net.truths;
    for (i = 0; i < net.n; ++i)
        if (net.layers[i].truths > truths) truths = net.layers[i].truths;
    if (!truths) truths = net.layers[net.n - 1].outputs;    // a classifier's one-hot rows
    int resize_w = argc == 9 ? atoi(argv[7]) : 0, resize_h = argc == 9 ? atoi(argv[8]) : 0;
    // each image's floats, the first iteration's and the later ones' (resize_network leaves
    // net.inputs as it was: the first layer's are the new size's)
    size_t inputs = net.inputs, later_inputs = inputs;
    if (resize_w) later_inputs = inputs / ((size_t)net.w * net.h) * resize_w * resize_h;
    float *x = read_floats(argv[3], (size_t)rows * (inputs + (iterations - 1) * later_inputs));
    float *t = read_floats(argv[4], (size_t)iterations * rows * truths);
    float *input_delta = calloc((size_t)net.batch * (inputs > later_inputs ? inputs :
                                                     later_inputs), sizeof(float));
    int trained_from = 0;
    for (i = 0; i < net.n; ++i) if (net.layers[i].stopbackward == 1) trained_from = i;
    for (i = trained_from; i < net.n; ++i) if (net.layers[i].update) net.layers[i].train = 1;
    char path[4096];
    snprintf(path, sizeof(path), "%s.loss", argv[6]);
    FILE *losses = fopen(path, "wb");
    float *images = x;
    for (k = 0; k < iterations; ++k) {
        float sum = 0;
        if (k == 1 && resize_w) {
            resize_network(&net, resize_w, resize_h);
            free(net.workspace);
            net.workspace = calloc((size_t)1 << 24, sizeof(float));
            inputs = later_inputs;
        }
        for (s = 0; s < net.subdivisions; ++s) {
            size_t row = (size_t)k * rows + (size_t)s * net.batch;
            // (not the frozen layers' before the last stopbackward=1: none is read, and
            // resize_network leaves those of a layer without l.train at the old size, which
            // forward_network_gpu's zeroing writes past: a bug of both of AB's builds)
            for (i = trained_from; i < net.n; ++i)
                if (net.layers[i].delta)
                    memset(net.layers[i].delta, 0, sizeof(float) * net.layers[i].outputs *
                                                    net.layers[i].batch);
            *net.seen += net.batch;
            net.current_subdivision = s;
            network_state state = {0};
            state.net = net;
            state.input = images + (size_t)s * net.batch * inputs;
            state.truth = t + row * truths;
            state.train = 1;
            state.workspace = net.workspace;
            forward(net, state);
            backward(net, state, input_delta);
            sum += get_network_cost(net);
        }
        images += (size_t)rows * inputs;
        *net.cur_iteration += 1;
        update(net);
        moving_average(net);
        float pair[2] = {sum / rows, get_current_rate(net)};
        fwrite(pair, sizeof(float), 2, losses);
        snprintf(path, sizeof(path), "%s.%d.weights", argv[6], k + 1);
        save_weights(net, path);
    }
    fclose(losses);
    return 0;
}
