/* The commands' entry points are declared in commands.h beside kapprox.c;
 * this forwarder remains until experiments/decoder/'s includes move to it
 * (other branches edit those files now). */
#include "../commands.h"
