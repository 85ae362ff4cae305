/*
 * bcryptprimitives.dll for Wine 8, which lacks it: Rust's standard library
 * on Windows gets its random bytes (HashMap seeds) from ProcessPrng in this
 * DLL, so no test binary would start. This one answers ProcessPrng from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine has.
 * scripts/wine-test.sh builds it into the test prefix; nothing ships it.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
