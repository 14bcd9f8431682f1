/* The Joe–Kuo new-joe-kuo-6.21201 direction-number table, compiled into the
 * library (samplers/sobol_table_gen.c writes it at build time from
 * data/sobol_directions_joe_kuo_6_21201.txt) so the installed program needs
 * no data file at run time.
 *
 * Entry j (0-based) describes Sobol' dimension j + 1.  Entry 0 is dimension
 * 1, the van der Corput sequence: degree 0, no initial numbers (every
 * direction number is m_i = 1).  For j >= 1: the primitive polynomial has
 * degree kx_sobol_degree[j] and interior coefficients kx_sobol_poly[j] (as a
 * binary number, the leading and constant terms omitted), and the initial
 * direction numbers m_1..m_degree are kx_sobol_m[kx_sobol_offset[j] ...]. */
#ifndef KX_SOBOL_TABLE_H
#define KX_SOBOL_TABLE_H

#include <stdint.h>

#define KX_SOBOL_MAX_DIM 21201
#define KX_SOBOL_MAX_DEGREE 18

extern const uint8_t kx_sobol_degree[KX_SOBOL_MAX_DIM];
extern const uint32_t kx_sobol_poly[KX_SOBOL_MAX_DIM];
extern const uint32_t kx_sobol_offset[KX_SOBOL_MAX_DIM + 1];
extern const uint32_t kx_sobol_m[];

#endif
