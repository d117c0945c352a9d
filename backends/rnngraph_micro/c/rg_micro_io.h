/* rnngraph micro harness: printing results and counting time, on a board or a host. */
#ifndef RG_MICRO_IO_H
#define RG_MICRO_IO_H
#include <stdint.h>
void rg_io_begin(const char *name);      /* a line "name" ... */
void rg_io_int(int64_t v);               /* ... " v" ... */
void rg_io_end(void);                    /* ... "\n" */
void rg_clock_start(void);
uint32_t rg_clock_ticks(void);           /* ticks since rg_clock_start (0 on a host) */
#endif
