/* libkapprox: samplers, feature maps, attention, metrics and the Q/K file
 * reader of the kapprox toolkit.  Build with
 *   cc prog.c $(pkg-config --cflags --libs kapprox)
 * and call kx_init_library() once first.  Only the names declared in these
 * headers are exported. */
#ifndef KAPPROX_KAPPROX_H
#define KAPPROX_KAPPROX_H

#include "status.h"
#include "sequence.h"
#include "kernel.h"
#include "fmap.h"
#include "attention.h"
#include "metrics.h"
#include "qk.h"

#endif
