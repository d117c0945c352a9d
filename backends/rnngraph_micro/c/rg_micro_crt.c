/* rnngraph micro harness start-up for a Cortex-M board model (qemu's MPS2/MPS3):
   the vector table, .data copied from flash, .bss zeroed, main, then exit. */
#include <stdint.h>
#include <string.h>
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void rg_exit(int code);

void rg_reset_handler(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  rg_exit(main());
}
static void rg_fault(void) { rg_exit(99); }

__attribute__((section(".vectors"), used)) const void *const rg_vectors[16] = {
    &_estack, (const void *)rg_reset_handler, (const void *)rg_fault, (const void *)rg_fault,
    (const void *)rg_fault, (const void *)rg_fault, (const void *)rg_fault};

/* what GCC may call for struct copies and loops */
void *memcpy(void *d, const void *s, size_t n) {
  uint8_t *dd = d;
  const uint8_t *ss = s;
  while (n--) *dd++ = *ss++;
  return d;
}
void *memset(void *d, int c, size_t n) {
  uint8_t *dd = d;
  while (n--) *dd++ = (uint8_t)c;
  return d;
}
