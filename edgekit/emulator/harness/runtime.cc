// The few C++ runtime functions TFLite-Micro needs, so that the harness links without the
// prebuilt libstdc++/libsupc++ for arm-none-eabi (a 1.5 GB package): TFLM is compiled with
// -fno-exceptions -fno-rtti -fno-threadsafe-statics, allocates from its arena with placement new,
// and only its virtual destructors reference operator delete.
#include <cstddef>
#include <cstdio>
#include <cstdlib>

void* operator new(std::size_t n) { return std::malloc(n); }
void* operator new[](std::size_t n) { return std::malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

extern "C" {
void* __dso_handle = nullptr;  // normally from crtbegin.o (not linked: -nostartfiles)

// Static destructors are never run on the board: registering one does nothing.
int __aeabi_atexit(void*, void (*)(void*), void*) { return 0; }
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }

void __cxa_pure_virtual() {
  std::fputs("edgekit-harness: pure virtual call\n", stderr);
  std::abort();
}
}
