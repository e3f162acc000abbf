// model/cpu.c's reading of the CPU's extensions against the Linux kernel's, on the machine the
// test runs on: every name of the table that has a /proc/cpuinfo flag is present exactly when
// that flag is (the kernel reads the same CPUID bits and clears those whose register state it
// does not enable, as cpu.c checks XCR0). Names given as arguments (tests/e2e_kernel.sh passes
// the Makefile's isa_of of -march=native) must be known to the table and
// be present. A name the table does not know answers -1.
// ranks: 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/cpu.h"
#include "tests/check.h"

// Whether the space-separated flags line holds flag.
static int has_flag(const char* flags, const char* flag)
{
    const size_t n = strlen(flag);
    for (const char* p = flags; (p = strstr(p, flag)); p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n])) return 1;
    return 0;
}

int main(int argc, char** argv)
{
    static char flags[65536];
    FILE* f = fopen("/proc/cpuinfo", "r");
    char line[sizeof flags];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            strcpy(flags, strchr(line, ':') ? strchr(line, ':') + 1 : line);
            break;
        }
    if (f) fclose(f);
    if (!flags[0]) {
        printf("SKIPPED: no flags line in /proc/cpuinfo\n");
        return 0;
    }
    int compared = 0, present = 0;
    char unflagged[1024] = "";
    const char* flag;
    for (int i = 0; cpu_feature_name(i, &flag); i++) {
        const char* name = cpu_feature_name(i, &flag);
        const int has = cpu_feature(name, strlen(name));
        CHECK(has == 0 || has == 1, "%s: the table's own name answers %d", name, has);
        if (!flag) {
            snprintf(unflagged + strlen(unflagged), sizeof unflagged - strlen(unflagged), " %s", name);
            continue;
        }
        const int want = has_flag(flags, flag);
        CHECK(has == want, "%s: CPUID and XCR0 say %d, /proc/cpuinfo's %s says %d", name, has, flag, want);
        compared++, present += has;
    }
    // -march=native enables what GCC's driver read from CPUID and XCR0: all of it is present.
    for (int a = 1; a < argc; a++) {
        const int has = cpu_feature(argv[a], strlen(argv[a]));
        CHECK(has != -1, "%s (enabled by the build flags) is unknown to model/cpu.c's table", argv[a]);
        CHECK(has != 0, "%s: enabled by -march=native on this CPU, but read as absent", argv[a]);
    }
    // LZCNT where the CPU lacks it runs as BSR: 0 for the lowest bit, where LZCNT counts 31.
    unsigned lz, one = 1;
    __asm__("lzcnt %1, %0" : "=r"(lz) : "r"(one));
    CHECK(cpu_feature("lzcnt", 5) == (lz == 31), "lzcnt: CPUID says %d, but LZCNT of 1 gives %u",
          cpu_feature("lzcnt", 5), lz);
    CHECK(cpu_feature("no-such-extension", 17) == -1, "an unknown name is not refused");
    CHECK(cpu_feature("avx512", 6) == -1, "a prefix of the table's names is taken for one");
    printf("%d names agree with /proc/cpuinfo (%d present on this CPU); %d names from the build "
           "flags known; without a cpuinfo flag to compare:%s\n", compared, present, argc - 1, unflagged);
    printf("cpu: %d failures\n", check_failures);
    return check_failures != 0;
}
