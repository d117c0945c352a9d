/* rnngraph micro harness I/O. On a board (RG_SEMIHOSTING): Arm semihosting writes the
   lines to the debugger's (qemu's) stdout and SysTick counts processor clock ticks. */
#include "rg_micro_io.h"

#ifdef RG_SEMIHOSTING
static char line[256];
static int used;

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
static void flush(void) {
  line[used] = 0;
  semihost(0x04, line); /* SYS_WRITE0 */
  used = 0;
}
static void put(char c) {
  if (used == (int)sizeof line - 1) flush();
  line[used++] = c;
}
void rg_io_begin(const char *name) { while (*name) put(*name++); }
void rg_io_int(int64_t v) {
  char digits[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  put(' ');
  if (v < 0) put('-');
  do { digits[n++] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
  while (n) put(digits[--n]);
}
void rg_io_end(void) { put('\n'); flush(); }
void rg_exit(int code) {
  uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit */
  semihost(0x20, block);                         /* SYS_EXIT_EXTENDED */
  for (;;) {}
}

#define SYST ((volatile uint32_t *)0xE000E010u) /* CSR, RVR, CVR */
void rg_clock_start(void) {
  SYST[0] = 0;
  SYST[1] = 0xFFFFFFu;
  SYST[2] = 0;
  SYST[0] = 5; /* enabled, processor clock */
  while (SYST[2] == 0) {}
}
uint32_t rg_clock_ticks(void) { return (0xFFFFFFu - SYST[2]) & 0xFFFFFFu; }
#else
#include <stdio.h>
void rg_io_begin(const char *name) { fputs(name, stdout); }
void rg_io_int(int64_t v) { printf(" %lld", (long long)v); }
void rg_io_end(void) { putchar('\n'); }
void rg_clock_start(void) {}
uint32_t rg_clock_ticks(void) { return 0; }
#endif
