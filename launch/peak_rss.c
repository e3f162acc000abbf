// VmHWM: the most resident memory the process has held, as Linux reports it in kB.
#include <stdio.h>
#include "launch/peak_rss.h"

double peak_rss_bytes(void)
{
    FILE* f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}
