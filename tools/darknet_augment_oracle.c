/* One training sample from AB Darknet's own load_data_detection (its OpenCV build), with the
 * random draws scripted: this program defines random_float(), random_gen(),
 * rand_uniform_strong(), rand_scale(), rand_int() and rand_uniform(), which the library
 * calls through its PLT, so that (linked with -rdynamic) they replace Darknet's.
 * tools/darknet_augment_fuzz.py gives pydarknet's augmentation the same draws.
 *
 *   darknet_augment_oracle IMAGE W H CLASSES BOXES JITTER RESIZE HUE SAT EXP FLIP LETTER_BOX
 *                          BLUR MIXUP FLOATS GENS OUT
 *
 * FLOATS, GENS: comma-separated values random_float() and random_gen() return, in order
 * (the last one again when they run out). OUT gets the image (3*H*W floats, CHW, RGB in
 * [0, 1]) and then the truths (BOXES rows of x, y, w, h, class, track id).
 *
 *   darknet_augment_oracle classifier IMAGE W H MIN MAX ANGLE ASPECT HUE SAT EXP FLIP FLOATS
 *                          GENS OUT
 *
 * writes the classifier's sample instead (load_image_augment_paths: 3*H*W floats).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "darknet.h"

data load_data_detection(int n, char **paths, int m, int w, int h, int c, int boxes,
                         int truth_size, int classes, int use_flip, int gaussian_noise,
                         int use_blur, int use_mixup, float jitter, float resize, float hue,
                         float saturation, float exposure, int mini_batch, int track,
                         int augment_speed, int letter_box, int mosaic_bound, int contrastive,
                         int contrastive_jit_flip, int contrastive_color, int show_imgs);

static float floats[64];
static unsigned int gens[256];
static int n_floats, n_gens, next_float, next_gen;

float random_float(void)
{
    float v = floats[next_float < n_floats ? next_float : n_floats - 1];
    ++next_float;
    return v;
}

unsigned int random_gen(void)
{
    unsigned int v = gens[next_gen < n_gens ? next_gen : n_gens - 1];
    ++next_gen;
    return v;
}

/* The library's own rand_uniform_strong, rand_uniform, rand_scale and rand_int call
 * random_float, rand() or random_gen inside utils.c, without the PLT: they are scripted here
 * too, with Darknet's arithmetic (float; 1. / scale in double). */
float rand_uniform_strong(float min, float max)
{
    if (max < min) {
        float t = min;
        min = max;
        max = t;
    }
    return random_float() * (max - min) + min;
}

/* the classifier's (rand() in Darknet): the same draw, scripted */
float rand_uniform(float min, float max)
{
    return rand_uniform_strong(min, max);
}

float rand_scale(float s)
{
    float scale = rand_uniform_strong(1, s);
    if (random_gen() % 2) return scale;
    return 1. / scale;
}

/* comma-separated values into floats (gens NULL) or unsigned integers */
int rand_int(int min, int max)
{
    if (max < min) {
        int t = min;
        min = max;
        max = t;
    }
    return (int)(random_gen() % (unsigned int)(max - min + 1)) + min;
}

static int parse_list(const char *text, float *floats_out, unsigned int *gens_out, int most)
{
    int n = 0;
    char *copy = strdup(text), *save = NULL, *tok;
    for (tok = strtok_r(copy, ",", &save); tok && n < most; tok = strtok_r(NULL, ",", &save)) {
        if (gens_out) gens_out[n++] = (unsigned int)strtoul(tok, NULL, 10);
        else floats_out[n++] = strtof(tok, NULL);
    }
    free(copy);
    return n;
}

matrix load_image_augment_paths(char **paths, int n, int use_flip, int min, int max, int w,
                                int h, float angle, float aspect, float hue, float saturation,
                                float exposure, int dontuse_opencv, int contrastive);

/* classifier IMAGE W H MIN MAX ANGLE ASPECT HUE SAT EXP FLIP FLOATS GENS OUT: the classifier's
 * sample (random_augment_image, flip, random_distort_image, resize_image), 3*H*W floats */
static int classifier(int argc, char **argv)
{
    if (argc != 16) {
        fprintf(stderr, "usage: %s classifier IMAGE W H MIN MAX ANGLE ASPECT HUE SAT EXP FLIP "
                "FLOATS GENS OUT\n", argv[0]);
        return 2;
    }
    char *paths[1] = {argv[2]};
    int w = atoi(argv[3]), h = atoi(argv[4]);
    n_floats = parse_list(argv[13], floats, NULL, 64);
    n_gens = parse_list(argv[14], NULL, gens, 256);
    matrix X = load_image_augment_paths(paths, 1, atoi(argv[12]), atoi(argv[5]), atoi(argv[6]),
                                        w, h, atof(argv[7]), atof(argv[8]), atof(argv[9]),
                                        atof(argv[10]), atof(argv[11]), 0, 0);
    FILE *f = fopen(argv[15], "wb");
    if (!f) return 1;
    fwrite(X.vals[0], sizeof(float), 3 * w * h, f);
    fclose(f);
    fprintf(stderr, "floats used %d, gens used %d\n", next_float, next_gen);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "classifier")) return classifier(argc, argv);
    if (argc != 18) {
        fprintf(stderr, "usage: %s IMAGE W H CLASSES BOXES JITTER RESIZE HUE SAT EXP FLIP "
                "LETTER_BOX BLUR MIXUP FLOATS GENS OUT\n", argv[0]);
        return 2;
    }
    char *paths[1] = {argv[1]};
    int w = atoi(argv[2]), h = atoi(argv[3]), classes = atoi(argv[4]), boxes = atoi(argv[5]);
    n_floats = parse_list(argv[15], floats, NULL, 64);
    n_gens = parse_list(argv[16], NULL, gens, 256);
    const int truth_size = 6;        /* x, y, w, h, class, track id: [yolo]'s l.truth_size */
    data d = load_data_detection(1, paths, 1, w, h, 3, boxes, truth_size, classes,
                                 atoi(argv[11]), 0, atoi(argv[13]), atoi(argv[14]),
                                 atof(argv[6]),
                                 atof(argv[7]),
                                 atof(argv[8]), atof(argv[9]), atof(argv[10]), 1, 0, 1,
                                 atoi(argv[12]), 0, 0, 0, 0, 0);
    FILE *f = fopen(argv[17], "wb");
    if (!f) return 1;
    fwrite(d.X.vals[0], sizeof(float), 3 * w * h, f);
    fwrite(d.y.vals[0], sizeof(float), truth_size * boxes, f);
    fclose(f);
    fprintf(stderr, "floats used %d, gens used %d\n", next_float, next_gen);
    return 0;
}
