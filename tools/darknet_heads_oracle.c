// AB Darknet's training forward of a cfg's last layer on a given input and truth: writes
// l.output, l.delta and l.cost[0] (float32). Used by darknet_heads_oracle.py.
// Usage: heads CFG INPUT TRUTH SEEN OUT [PARAMS DELTA] (raw float32 files)
// With PARAMS (a [local] layer's biases, then weights) and DELTA (its output's gradient in
// Darknet's sign), it also runs l.backward and appends the input's delta, weight_updates and
// bias_updates.
// Usage: heads CFG INPUT - frames=K OUT WEIGHTS: inference (state.train = 0) of the last layer
// after load_weights(WEIGHTS), K times on consecutive blocks of INPUT (a [crnn]'s state carries
// over); writes the K outputs.
// Usage: heads CFG INPUT TRUTH network=WEIGHTS OUT: the whole network's training forward
// (forward_network, state.train = 1) after load_weights(WEIGHTS); writes the last layer's
// l.delta, l.cost[0] and l.loss[0] (a [contrastive] layer's accuracy).
// Usage: heads CFG INPUT TRUTH passes=K:ITERATION OUT: K training forwards of the last layer
// (a [yolo]) at *net.cur_iteration = ITERATION on consecutive blocks of INPUT and TRUTH (the
// network's rolling delta statistics carry over); writes each pass's l.delta and l.cost[0].
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "darknet.h"
#include "parser.h"
#include "network.h"

static float *readf(const char *p, size_t n) {
    float *a = calloc(n, sizeof(float));
    FILE *f = fopen(p, "rb");
    if (!f || fread(a, sizeof(float), n, f) != n) { fprintf(stderr, "read %s\n", p); exit(1); }
    fclose(f);
    return a;
}

static int frames(network net, layer l, char **argv) {
    int k, K = atoi(argv[4] + 7);
    size_t nin = (size_t)l.batch * l.inputs;
    float *x = readf(argv[2], nin * K);
    load_weights(&net, argv[6]);
    l = net.layers[net.n - 1];
    FILE *f = fopen(argv[5], "wb");
    for (k = 0; k < K; ++k) {
        network_state state = {0};
        state.net = net;
        state.index = net.n - 1;
        state.input = x + k * nin;
        state.workspace = net.workspace;      // the convolutions' im2col buffer
        l.forward(l, state);
        fwrite(l.output, sizeof(float), (size_t)l.batch * l.outputs, f);
    }
    fclose(f);
    return 0;
}

static int whole(network net, char **argv) {
    load_weights(&net, argv[4] + 8);
    layer first = net.layers[0], l = net.layers[net.n - 1];
    float *x = readf(argv[2], (size_t)first.batch * first.inputs);
    int i, truths = 0;
    for (i = 0; i < net.n; ++i)
        if (net.layers[i].type == YOLO && net.layers[i].truths > truths)
            truths = net.layers[i].truths;
    float *t = readf(argv[3], (size_t)net.batch * truths);
    network_state state = {0};
    state.net = net;
    state.input = x;
    state.truth = t;
    state.train = 1;
    forward_network(net, state);
    FILE *f = fopen(argv[5], "wb");
    fwrite(l.delta, sizeof(float), (size_t)l.batch * l.outputs, f);
    fwrite(l.cost, sizeof(float), 1, f);
    fwrite(l.loss, sizeof(float), 1, f);
    fclose(f);
    return 0;
}

static int passes(network net, layer l, char **argv) {
    int k, K = atoi(argv[4] + 7);
    *net.cur_iteration = atoi(strchr(argv[4], ':') + 1);
    size_t nin = (size_t)l.batch * l.inputs, ntruth = (size_t)l.batch * l.truths;
    float *x = readf(argv[2], nin * K);
    float *t = readf(argv[3], ntruth * K);
    FILE *f = fopen(argv[5], "wb");
    for (k = 0; k < K; ++k) {
        network_state state = {0};
        state.net = net;
        state.index = net.n - 1;
        state.input = x + k * nin;
        state.truth = t + k * ntruth;
        state.train = 1;
        l.forward(l, state);
        fwrite(l.delta, sizeof(float), (size_t)l.batch * l.outputs, f);
        fwrite(l.cost, sizeof(float), 1, f);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    if (!strncmp(argv[4], "network=", 8))   // the cfg's time_steps kept
        return whole(parse_network_cfg_custom(argv[1], 0, 0), argv);
    network net = parse_network_cfg_custom(argv[1], 0, 1);
    layer l = net.layers[net.n - 1];
    if (!strncmp(argv[4], "frames=", 7)) return frames(net, l, argv);
    if (!strncmp(argv[4], "passes=", 7)) return passes(net, l, argv);
    size_t nin = (size_t)l.batch * l.inputs;
    size_t ntruth = (size_t)l.batch * (l.type == DETECTION
                                       ? l.side * l.side * (1 + l.coords + l.classes)
                                       : l.type == SOFTMAX ? l.inputs : l.truths);
    float *x = readf(argv[2], nin);
    float *t = readf(argv[3], ntruth);
    *net.seen = (uint64_t)atol(argv[4]);
    int backward = argc > 7;
    size_t nweights = (size_t)l.size * l.size * l.c * l.n * l.out_w * l.out_h;
    if (backward) {   // [local]: the given parameters
        float *p = readf(argv[6], (size_t)l.outputs + nweights);
        memcpy(l.biases, p, sizeof(float) * l.outputs);
        memcpy(l.weights, p + l.outputs, sizeof(float) * nweights);
        free(p);
    }
    network_state state = {0};
    state.net = net;
    state.index = net.n - 1;
    state.input = x;
    state.truth = t;
    state.train = 1;
    l.forward(l, state);
    float *dx = 0;
    if (backward) {
        float *d = readf(argv[7], (size_t)l.batch * l.outputs);
        memcpy(l.delta, d, sizeof(float) * l.batch * l.outputs);
        free(d);
        dx = calloc(nin, sizeof(float));
        state.delta = dx;
        l.backward(l, state);
    }
    FILE *f = fopen(argv[5], "wb");
    fwrite(l.output, sizeof(float), (size_t)l.batch * l.outputs, f);
    fwrite(l.delta, sizeof(float), (size_t)l.batch * l.outputs, f);
    fwrite(l.cost ? l.cost : (float[]){0}, sizeof(float), 1, f);
    if (backward) {
        fwrite(dx, sizeof(float), nin, f);
        fwrite(l.weight_updates, sizeof(float), nweights, f);
        fwrite(l.bias_updates, sizeof(float), (size_t)l.outputs, f);
    }
    fclose(f);
    return 0;
}
