// AB Darknet's classifier validation views, the scores each of its `classifier valid*`
// commands sums for an image (before top_k). Used by darknet_eval_oracle.py.
// Usage: classifier CFG WEIGHTS MODE OUT IMAGE... with MODE one of single (valid), crop
// (validcrop: load_data_old's resize), 10 (valid10), multi (validmulti), full (validfull);
// writes, per image, the network's outputs summed over the mode's views (float32).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "darknet.h"
#include "parser.h"
#include "network.h"
#include "image.h"
#include "blas.h"

static void add_prediction(network *net, image im, float *sum) {
    if (im.w != net->w || im.h != net->h) resize_network(net, im.w, im.h);
    float *p = network_predict(*net, im.data);
    axpy_cpu(net->outputs, 1, p, 1, sum, 1);
}

static void shifted_crops(network *net, image big, int shift, float *sum) {
    int at[5][2] = {{-shift, -shift}, {shift, -shift}, {0, 0}, {-shift, shift}, {shift, shift}};
    int w = net->w, h = net->h;
    for (int k = 0; k < 5; ++k) {
        image c = crop_image(big, at[k][0], at[k][1], w, h);
        add_prediction(net, c, sum);
        free_image(c);
    }
}

int main(int argc, char **argv) {
    network net = parse_network_cfg_custom(argv[1], 1, 0);
    load_weights(&net, argv[2]);
    const char *mode = argv[3];
    FILE *f = fopen(argv[4], "wb");
    int w = net.w, h = net.h, n = net.outputs;
    for (int i = 5; i < argc; ++i) {
        float *sum = calloc(n, sizeof(float));
        if (!strcmp(mode, "10")) {
            image big = load_image_color(argv[i], w + 32, h + 32);
            shifted_crops(&net, big, 32, sum);
            flip_image(big);
            shifted_crops(&net, big, 32, sum);
            free_image(big);
        } else if (!strcmp(mode, "crop")) {
            image im = load_image_color(argv[i], w, h);
            add_prediction(&net, im, sum);
            free_image(im);
        } else {
            image im = load_image_color(argv[i], 0, 0);
            if (!strcmp(mode, "multi")) {
                int scales[] = {224, 288, 320, 352, 384};
                for (int s = 0; s < 5; ++s) {
                    image r = resize_min(im, scales[s]);
                    image m = copy_image(r);
                    add_prediction(&net, r, sum);
                    flip_image(m);
                    add_prediction(&net, m, sum);
                    if (r.data != im.data) free_image(r);
                    free_image(m);
                }
            } else {
                image r = resize_min(im, w);
                image v = !strcmp(mode, "full") ? copy_image(r)
                        : crop_image(r, (r.w - w) / 2, (r.h - h) / 2, w, h);
                add_prediction(&net, v, sum);
                if (r.data != im.data) free_image(r);
                free_image(v);
            }
            free_image(im);
            if (net.w != w || net.h != h) resize_network(&net, w, h);
        }
        fwrite(sum, sizeof(float), n, f);
        free(sum);
    }
    fclose(f);
    return 0;
}
