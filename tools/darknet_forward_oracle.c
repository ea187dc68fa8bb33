// AB Darknet's inference of a whole network: every layer's output, for
// tools/darknet_forward_oracle.py.
// Usage: forward CFG WEIGHTS INPUT BATCH OUT (INPUT: raw float32; OUT: for each layer its
// index and value count (int32), then its values)
#include <stdio.h>
#include <stdlib.h>
#include "darknet.h"
#include "parser.h"
#include "network.h"

int main(int argc, char **argv) {
    int i, batch = atoi(argv[4]);
    network net = parse_network_cfg_custom(argv[1], batch, 1);
    load_weights(&net, argv[2]);
    // Darknet sizes its workspace without the blurs of antialiasing= (they write past it)
    net.workspace = calloc((size_t)1 << 24, sizeof(float));
    size_t nin = (size_t)net.batch * net.inputs;
    float *x = calloc(nin, sizeof(float));
    FILE *f = fopen(argv[3], "rb");
    if (!f || fread(x, sizeof(float), nin, f) != nin) { fprintf(stderr, "short input\n"); return 1; }
    fclose(f);
    network_predict(net, x);
    f = fopen(argv[5], "wb");
    for (i = 0; i < net.n; ++i) {
        layer l = net.layers[i];
        // an antialiased layer's output is its blur's (its own out_w/out_h are stride 1's)
        int n = l.batch * (l.antialiasing ? l.input_layer->outputs : l.outputs);
        fwrite(&i, sizeof(int), 1, f);
        fwrite(&n, sizeof(int), 1, f);
        fwrite(l.output, sizeof(float), n, f);
    }
    fclose(f);
    return 0;
}
