// The peak resident memory of this process (VmHWM), for the figures bench prints at the end.
#ifndef LAUNCH_PEAK_RSS_H
#define LAUNCH_PEAK_RSS_H

// Bytes, from /proc/self/status; 0 where the kernel does not report it.
double peak_rss_bytes(void);

#endif
