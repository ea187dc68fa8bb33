// Darknet's inference of a whole network: every layer's output, for
// tools/darknet_forward_oracle.py. Built against AB's Darknet, or with -DPJREDDIE against
// pjreddie's (the original; its shortcut adds layers of other spatial sizes, which AB's
// refuses).
// Usage: forward CFG WEIGHTS INPUT BATCH OUT [TRUTH] (INPUT: raw float32; OUT: for each layer
// its index and value count (int32), then its values). pjreddie's build takes the cfg's batch.
// BATCH may be ROWS:STEPS:PASSES (AB's build, recurrent layers): STEPS time steps a pass
// (ROWS / STEPS sequences), PASSES passes on successive INPUT rows with the recurrent state
// carried; pass p's layer i is written as index p * 100000 + i.
// With TRUTH (AB's build; float32 rows x y w h class id, the layers' max boxes per image):
// Darknet's training forward (state.train = 1, the cfg's mini-batch, batch norm on batch
// statistics), and for each [yolo], [Gaussian_yolo] and [region] layer i also l.delta (as
// index -1-i) and l.cost (as -1000-i).
// Backward (AB's build): forward CFG WEIGHTS INPUT BATCH OUT TRUTH DELTA COUNTS, TRUTH "-" for
// zero truths: the training forward, then DELTA (float32) replaces the last layer's delta and
// backward_network runs. Written besides the outputs: each layer i's delta as its backward
// receives it (200000+i), the input's delta (199999), and each layer's weight, bias and scale
// gradients (300000+3i+k), as many values as COUNTS (int32, three a layer) says; a gradient
// Darknet does not have is left out.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "darknet.h"
#ifndef PJREDDIE
#include "parser.h"
#include "network.h"
#endif

static float *read_input(const char *path, size_t n) {
    float *x = calloc(n, sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!f || fread(x, sizeof(float), n, f) != n) { fprintf(stderr, "short input\n"); exit(1); }
    fclose(f);
    return x;
}

static void write_layer(FILE *f, int i, const float *values, int n) {
    fwrite(&i, sizeof(int), 1, f);
    fwrite(&n, sizeof(int), 1, f);
    fwrite(values, sizeof(float), n, f);
}

#ifndef PJREDDIE
// Replace the last layer's delta with DELTA, run Darknet's backward_network into an input
// delta of its own, and write every delta and gradient (see the header).
static void backward(network net, network_state state, const char *delta, const char *counts,
                     FILE *f) {
    int i, k;
    layer last = net.layers[net.n - 1];
    float *r = read_input(delta, (size_t)last.outputs * last.batch);
    memcpy(last.delta, r, sizeof(float) * last.outputs * last.batch);
    int *count = (int *)read_input(counts, (size_t)3 * net.n);
    // backward_network's loop, each delta written as it arrives (before the layer's own
    // backward, which transforms it in place)
    float *input = state.input, *input_delta = calloc((size_t)net.inputs * net.batch,
                                                      sizeof(float));
    state.workspace = net.workspace;
    for (i = net.n - 1; i >= 0; --i) {
        layer l = net.layers[i];
        state.index = i;
        state.input = i ? net.layers[i - 1].output : input;
        state.delta = i ? net.layers[i - 1].delta : input_delta;
        if (l.stopbackward) break;
        if (l.delta) write_layer(f, 200000 + i, l.delta, l.outputs * l.batch);
        if (!l.onlyforward) l.backward(l, state);
    }
    write_layer(f, 199999, input_delta, net.inputs * net.batch);
    for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        float *grads[3] = {l.weight_updates, l.bias_updates, l.scale_updates};
        for (k = 0; k < 3; ++k)
            if (grads[k] && count[3 * i + k]) write_layer(f, 300000 + 3 * i + k, grads[k],
                                                          count[3 * i + k]);
    }
}
#endif

int main(int argc, char **argv) {
    int i;
    FILE *f;
#ifdef PJREDDIE
    network *net = load_network(argv[1], argv[2], 0);
    float *x = read_input(argv[3], (size_t)net->batch * net->inputs);
    network_predict(net, x);
    f = fopen(argv[5], "wb");
    for (i = 0; i < net->n; ++i)
        write_layer(f, i, net->layers[i].output, net->layers[i].batch * net->layers[i].outputs);
#else
    int train = argc > 6;
    int rows = atoi(argv[4]), steps = 1, passes = 1, p;
    sscanf(argv[4], "%d:%d:%d", &rows, &steps, &passes);
    network net = parse_network_cfg_custom(argv[1], train ? 0 : rows, steps);
    load_weights(&net, argv[2]);
    // Darknet sizes its workspace without the blurs of antialiasing= (they write past it)
    net.workspace = calloc((size_t)1 << 24, sizeof(float));
    float *x = read_input(argv[3], (size_t)passes * net.batch * net.inputs);
    f = fopen(argv[5], "wb");
    if (train) {
        int truths;
        // AB's CPU build leaves the delta of [lstm] unallocated, yet its training forward
        // clears it
        for (i = 0; i < net.n; ++i)
            if ((net.layers[i].type == LSTM || net.layers[i].type == CONV_LSTM) &&
                !net.layers[i].delta)
                net.layers[i].delta = calloc((size_t)net.layers[i].outputs *
                                             net.layers[i].batch * net.layers[i].steps,
                                             sizeof(float));
        // (zero truths: as many as any layer could read, a classifier's layers' inputs)
        int zero = !strcmp(argv[6], "-");
        truths = zero ? net.truths : 0;
        for (i = 0; i < net.n; ++i) {
            layer l = net.layers[i];
            if (l.truths > truths) truths = l.truths;
            if (zero && l.inputs > truths) truths = l.inputs;
        }
        network_state state = {0};
        state.net = net;
        state.input = x;
        state.truth = zero ? calloc((size_t)net.batch * truths + 1, sizeof(float))
                           : read_input(argv[6], (size_t)net.batch * truths);
        state.train = 1;
        state.workspace = net.workspace;
        forward_network(net, state);
        if (argc > 8) backward(net, state, argv[7], argv[8], f);
    }
    for (p = 0; p < passes; ++p) {
      if (!train) network_predict(net, x + (size_t)p * net.batch * net.inputs);
      for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        // an antialiased layer's output is its blur's (its own out_w/out_h are stride 1's)
        int n = l.batch * (l.antialiasing ? l.input_layer->outputs : l.outputs);
        // a recurrent layer's batch is a time step's; its output holds every step's
        if (l.type == RNN || l.type == LSTM || l.type == GRU || l.type == CRNN ||
            l.type == CONV_LSTM) n *= l.steps;
        write_layer(f, p * 100000 + i, l.output, n);
        if (train && argc <= 8 &&
            (l.type == YOLO || l.type == GAUSSIAN_YOLO || l.type == REGION)) {
            write_layer(f, -1 - i, l.delta, n);
            write_layer(f, -1000 - i, l.cost, 1);
        }
      }
    }
#endif
    fclose(f);
    return 0;
}
