/* atomicfile.h - replacing a file whole: written to a new temporary file in the same directory
 * (mkstemp: a fresh name opened with O_EXCL, so a symlink planted there is never followed and two
 * processes never share it), flushed to disk, then renamed over the destination (rename replaces
 * a symlink at the destination itself, it does not write through it). A reader sees the old file
 * or the new one, never half of one. */
#ifndef EGRESSSCAN_ATOMICFILE_H
#define EGRESSSCAN_ATOMICFILE_H

#include <stdio.h>

#include "common/err.h"

/* Writes the content into out; 0, or -1 with err set. */
typedef int (*atomicfile_fill_fn)(FILE *out, void *ud, struct err *err);

/* Replaces path with what fill writes: PATH.tmp.XXXXXX (mode 0666 less the umask), fsync, rename,
 * then an fsync of the directory. The temporary file is removed on any failure and path is left
 * as it was. 0, or -1 with err (ERR_IO "FILE: reason", or fill's own error). */
int atomicfile_write(const char *path, atomicfile_fill_fn fill, void *ud, struct err *err);

#endif
