// The extensions' CPUID bits (Intel SDM vol. 2A, CPUID; AMD APM vol. 3, appendix E) and the
// register state each needs the OS to enable, read the way the Linux kernel reads them. Compiled
// for plain x86-64 (the Makefile): it runs before main on any CPU.
#include <cpuid.h>
#include <stdint.h>
#include <string.h>
#include "model/cpu.h"

enum reg { EAX, EBX, ECX, EDX };

// What else the extension needs: the OS's XSAVE (CR4.OSXSAVE), and in XCR0 the SSE and YMM
// state (VEX-encoded vector instructions), also the opmask and ZMM state (EVEX), or the AMX
// tile state; or protection keys enabled (CR4.PKE).
enum state { NONE, XSAVE, YMM, ZMM, TILE, PKE };

typedef struct feature {
    const char* name;  // as the Makefile's isa_of writes it
    unsigned leaf, sub;
    enum reg reg;
    int bit;
    enum state state;
    const char* flag;  // /proc/cpuinfo's name for the bit, NULL where it has none to trust
} feature;

static const feature table[] = {
    {"sse3", 1, 0, ECX, 0, NONE, "pni"},
    {"pclmul", 1, 0, ECX, 1, NONE, "pclmulqdq"},
    {"mwait", 1, 0, ECX, 3, NONE, NULL},  // hypervisors and Linux may hide MONITOR
    {"ssse3", 1, 0, ECX, 9, NONE, "ssse3"},
    {"fma", 1, 0, ECX, 12, YMM, "fma"},
    {"sse4.1", 1, 0, ECX, 19, NONE, "sse4_1"},
    {"sse4.2", 1, 0, ECX, 20, NONE, "sse4_2"},
    {"crc32", 1, 0, ECX, 20, NONE, "sse4_2"}, // GCC's -mcrc32: the SSE4.2 instruction
    {"movbe", 1, 0, ECX, 22, NONE, "movbe"},
    {"popcnt", 1, 0, ECX, 23, NONE, "popcnt"},
    {"aes", 1, 0, ECX, 25, NONE, "aes"},
    {"xsave", 1, 0, ECX, 26, XSAVE, "xsave"},
    {"avx", 1, 0, ECX, 28, YMM, "avx"},
    {"f16c", 1, 0, ECX, 29, YMM, "f16c"},
    {"rdrnd", 1, 0, ECX, 30, NONE, "rdrand"},
    // User space may run RDFSBASE and kin only where the OS sets CR4.FSGSBASE (AT_HWCAP2), and
    // /proc/cpuinfo hides the flag where it does not (as this machine's kernel). GCC emits them
    // only from their intrinsics, which fnn does not use, and its -march=native takes CPUID's
    // word: so does this table, or a native build would refuse to run here.
    {"fsgsbase", 7, 0, EBX, 0, NONE, NULL},
    {"sgx", 7, 0, EBX, 2, NONE, NULL},  // Linux hides it when the firmware leaves SGX off
    {"bmi", 7, 0, EBX, 3, NONE, "bmi1"},
    {"hle", 7, 0, EBX, 4, NONE, NULL},  // TSX: Linux may clear it (tsx=off)
    {"avx2", 7, 0, EBX, 5, YMM, "avx2"},
    {"bmi2", 7, 0, EBX, 8, NONE, "bmi2"},
    {"rtm", 7, 0, EBX, 11, NONE, NULL},
    {"avx512f", 7, 0, EBX, 16, ZMM, "avx512f"},
    {"avx512dq", 7, 0, EBX, 17, ZMM, "avx512dq"},
    {"rdseed", 7, 0, EBX, 18, NONE, "rdseed"},
    {"adx", 7, 0, EBX, 19, NONE, "adx"},
    {"avx512ifma", 7, 0, EBX, 21, ZMM, "avx512ifma"},
    {"clflushopt", 7, 0, EBX, 23, NONE, "clflushopt"},
    {"clwb", 7, 0, EBX, 24, NONE, "clwb"},
    {"avx512pf", 7, 0, EBX, 26, ZMM, "avx512pf"},
    {"avx512er", 7, 0, EBX, 27, ZMM, "avx512er"},
    {"avx512cd", 7, 0, EBX, 28, ZMM, "avx512cd"},
    {"sha", 7, 0, EBX, 29, NONE, "sha_ni"},
    {"avx512bw", 7, 0, EBX, 30, ZMM, "avx512bw"},
    {"avx512vl", 7, 0, EBX, 31, ZMM, "avx512vl"},
    // GCC 14's name for 512-bit EVEX vectors (on by default with avx512f): AVX512F's own bit.
    {"evex512", 7, 0, EBX, 16, ZMM, "avx512f"},
    {"prefetchwt1", 7, 0, ECX, 0, NONE, NULL},
    {"avx512vbmi", 7, 0, ECX, 1, ZMM, "avx512vbmi"},
    {"pku", 7, 0, ECX, 3, PKE, "ospke"},
    {"waitpkg", 7, 0, ECX, 5, NONE, "waitpkg"},
    {"avx512vbmi2", 7, 0, ECX, 6, ZMM, "avx512_vbmi2"},
    {"shstk", 7, 0, ECX, 7, NONE, NULL},
    {"gfni", 7, 0, ECX, 8, NONE, "gfni"},
    {"vaes", 7, 0, ECX, 9, YMM, "vaes"},
    {"vpclmulqdq", 7, 0, ECX, 10, YMM, "vpclmulqdq"},
    {"avx512vnni", 7, 0, ECX, 11, ZMM, "avx512_vnni"},
    {"avx512bitalg", 7, 0, ECX, 12, ZMM, "avx512_bitalg"},
    {"avx512vpopcntdq", 7, 0, ECX, 14, ZMM, "avx512_vpopcntdq"},
    {"rdpid", 7, 0, ECX, 22, NONE, "rdpid"},
    {"kl", 7, 0, ECX, 23, NONE, NULL},
    {"cldemote", 7, 0, ECX, 25, NONE, "cldemote"},
    {"movdiri", 7, 0, ECX, 27, NONE, "movdiri"},
    {"movdir64b", 7, 0, ECX, 28, NONE, "movdir64b"},
    {"enqcmd", 7, 0, ECX, 29, NONE, NULL},  // Linux shows it only with its PASID support
    {"avx5124vnniw", 7, 0, EDX, 2, ZMM, "avx512_4vnniw"},
    {"avx5124fmaps", 7, 0, EDX, 3, ZMM, "avx512_4fmaps"},
    {"uintr", 7, 0, EDX, 5, NONE, NULL},
    {"avx512vp2intersect", 7, 0, EDX, 8, ZMM, "avx512_vp2intersect"},
    {"serialize", 7, 0, EDX, 14, NONE, "serialize"},
    {"tsxldtrk", 7, 0, EDX, 16, NONE, "tsxldtrk"},
    {"pconfig", 7, 0, EDX, 18, NONE, "pconfig"},
    {"amx.bf16", 7, 0, EDX, 22, TILE, "amx_bf16"},
    {"avx512fp16", 7, 0, EDX, 23, ZMM, "avx512_fp16"},
    {"amx.tile", 7, 0, EDX, 24, TILE, "amx_tile"},
    {"amx.int8", 7, 0, EDX, 25, TILE, "amx_int8"},
    {"avxvnni", 7, 1, EAX, 4, YMM, "avx_vnni"},
    {"avx512bf16", 7, 1, EAX, 5, ZMM, "avx512_bf16"},
    {"hreset", 7, 1, EAX, 22, NONE, NULL},
    {"xsaveopt", 0xd, 1, EAX, 0, XSAVE, "xsaveopt"},
    {"xsavec", 0xd, 1, EAX, 1, XSAVE, "xsavec"},
    {"xsaves", 0xd, 1, EAX, 3, XSAVE, NULL},  // ring 0 only; Linux may turn it off
    {"ptwrite", 0x14, 0, EBX, 4, NONE, NULL},
    {"widekl", 0x19, 0, EBX, 2, NONE, NULL},
    {"lahf.sahf", 0x80000001, 0, ECX, 0, NONE, "lahf_lm"},
    // Linux 6.18 shows neither abm nor sse4a although the CPU runs them (tests/test_cpu.c runs
    // LZCNT instead).
    {"abm", 0x80000001, 0, ECX, 5, NONE, NULL},
    {"lzcnt", 0x80000001, 0, ECX, 5, NONE, NULL},
    {"sse4a", 0x80000001, 0, ECX, 6, NONE, NULL},
    {"prfchw", 0x80000001, 0, ECX, 8, NONE, "3dnowprefetch"},
    {"xop", 0x80000001, 0, ECX, 11, YMM, "xop"},
    {"lwp", 0x80000001, 0, ECX, 15, NONE, "lwp"},
    {"fma4", 0x80000001, 0, ECX, 16, YMM, "fma4"},
    {"tbm", 0x80000001, 0, ECX, 21, NONE, "tbm"},
    {"mwaitx", 0x80000001, 0, ECX, 29, NONE, "mwaitx"},
    {"3dnow.a", 0x80000001, 0, EDX, 30, NONE, NULL},  // Linux 6.6 dropped 3DNow!
    {"3dnow", 0x80000001, 0, EDX, 31, NONE, NULL},
    {"clzero", 0x80000008, 0, EBX, 0, NONE, "clzero"},
    {"wbnoinvd", 0x80000008, 0, EBX, 9, NONE, "wbnoinvd"},
};
enum { NFEATURES = sizeof table / sizeof table[0] };

// Register r of CPUID leaf.sub, 0 where the CPU has no such leaf.
static uint32_t cpuid(unsigned leaf, unsigned sub, enum reg r)
{
    unsigned v[4];
    if (!__get_cpuid_count(leaf, sub, &v[0], &v[1], &v[2], &v[3])) return 0;
    return v[r];
}

// XCR0, the register state the OS saves and so lets programs use; 0 without OSXSAVE, where
// XGETBV itself would fault.
static uint64_t xcr0(void)
{
    if (!(cpuid(1, 0, ECX) >> 27 & 1)) return 0;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int state_enabled(enum state s)
{
    const uint64_t x = xcr0();
    switch (s) {
    case NONE: return 1;
    case XSAVE: return cpuid(1, 0, ECX) >> 27 & 1;
    case YMM: return (x & 0x6) == 0x6;           // SSE, AVX
    case ZMM: return (x & 0xe6) == 0xe6;         // and opmask, ZMM_Hi256, Hi16_ZMM
    case TILE: return (x & 0x60006) == 0x60006;  // and TILECFG, TILEDATA
    case PKE: return cpuid(7, 0, ECX) >> 4 & 1;  // OSPKE
    }
    return 0;
}

int cpu_feature(const char* name, size_t len)
{
    for (int i = 0; i < NFEATURES; i++) {
        const feature* f = &table[i];
        if (strlen(f->name) != len || strncmp(f->name, name, len)) continue;
        return (cpuid(f->leaf, f->sub, f->reg) >> f->bit & 1) && state_enabled(f->state);
    }
    return -1;
}

const char* cpu_feature_name(int i, const char** flag)
{
    if (i < 0 || i >= NFEATURES) return NULL;
    *flag = table[i].flag;
    return table[i].name;
}
