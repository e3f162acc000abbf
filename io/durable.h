// Renames that survive a crash: the new name is on storage once the call returns.
#ifndef IO_DURABLE_H
#define IO_DURABLE_H

// rename(from, to), then fsync of the directory that holds to. 0, or -1 with errno set.
int durable_rename(const char* from, const char* to);

#endif
