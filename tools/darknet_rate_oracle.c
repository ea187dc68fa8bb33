/* AB Darknet's learning rate (get_current_rate) of a cfg after each given number of full
 * batches: the oracle of tests/test_policy.py (tools/darknet_rate_oracle.py runs it).
 *     darknet_rate_oracle CFG K...   ->  one rate a line, %.9g (a float, exactly) */
#include <stdio.h>
#include <stdlib.h>
#include "darknet.h"
#include "network.h"
#include "parser.h"

int main(int argc, char **argv)
{
    network net = parse_network_cfg(argv[1]);
    int i;
    for (i = 2; i < argc; ++i) {
        *net.seen = (uint64_t)atol(argv[i]) * net.batch * net.subdivisions;
        printf("rate %.9g\n", get_current_rate(net));
    }
    return 0;
}
