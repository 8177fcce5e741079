/* Reset, vector table and the SysTick clock of the edgekit emulator harness (bare metal, QEMU mps2).
 *
 * The few system registers used are addressed directly (ARMv7-M Architecture Reference Manual,
 * B3.2 System Control Space: CPACR 0xE000ED88, CFSR 0xE000ED28, HFSR 0xE000ED2C; B3.3 SysTick
 * 0xE000E010..1C); they are the same on Cortex-M4 and M7. (CMSIS 6's core_cm4.h would need its
 * m-profile/ headers, which the pinned source set leaves out.)
 *
 * Time: QEMU run with `-icount shift=0` advances its virtual clock by exactly 1 ns per executed
 * instruction, and SysTick on mps2 counts the 25 MHz system clock (hw/arm/mps2.c SYSCLK_FRQ), so one
 * SysTick tick is 40 instructions, independent of the host's speed. DWT->CYCCNT is not modelled by
 * QEMU (reads 0), which is why TFLM's cortex_m_generic micro_time.cc cannot be used. The 24-bit
 * counter wraps every 2^24 ticks; the interrupt handler extends it to 64 bits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define REG32(addr) (*(volatile uint32_t*)(addr))
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SYST_CSR REG32(0xE000E010u) /* bit 0 ENABLE, bit 1 TICKINT, bit 2 CLKSOURCE (processor clock) */
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)

extern uint32_t __stack_top;
extern uint32_t __bss_start__, __bss_end__;
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);
extern int main(void);

#define SYSTICK_RELOAD 0xFFFFFFu

/* crti.o/crtn.o are not linked (-nostartfiles): __libc_init_array calls these */
void _init(void) {}
void _fini(void) {}

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

uint64_t edgekit_ticks(void) {
  uint32_t hi, val;
  do {
    hi = systick_wraps;
    val = SYST_CVR;
  } while (hi != systick_wraps);
  return (uint64_t)hi * (SYSTICK_RELOAD + 1u) + (SYSTICK_RELOAD - val);
}

static void fault(const char* what) {
  fprintf(stderr, "edgekit-harness: %s (CFSR=0x%08lx HFSR=0x%08lx)\n", what, (unsigned long)SCB_CFSR,
          (unsigned long)SCB_HFSR);
  exit(3);
}

void HardFault_Handler(void) { fault("hard fault"); }
void MemManage_Handler(void) { fault("memory management fault"); }
void BusFault_Handler(void) { fault("bus fault"); }
void UsageFault_Handler(void) { fault("usage fault"); }
void Default_Handler(void) { fault("unexpected interrupt"); }

void Reset_Handler(void) {
  /* CP10/CP11 full access: the FPU must be on before any float instruction (hard-float ABI). */
  SCB_CPACR |= (3UL << 20) | (3UL << 22);
  __asm volatile("dsb\n\tisb" ::: "memory");
  for (uint32_t* p = &__bss_start__; p < &__bss_end__; ++p) *p = 0;
  initialise_monitor_handles();
  __libc_init_array();
  SYST_RVR = SYSTICK_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
  exit(main());
}

typedef void (*handler_t)(void);

__attribute__((section(".vectors"), used)) const handler_t edgekit_vectors[16] = {
    (handler_t)(&__stack_top),
    Reset_Handler,
    Default_Handler,  /* NMI */
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    Default_Handler,  /* SVC */
    Default_Handler,  /* DebugMon */
    0,
    Default_Handler,  /* PendSV */
    SysTick_Handler,
};
