/* textfile.h - reading a whole (small) text file, as the config and policy loaders do. */
#ifndef EGRESSSCAN_TEXTFILE_H
#define EGRESSSCAN_TEXTFILE_H

#include <stddef.h>

#include "common/err.h"

/* Reads path into a NUL-terminated malloc'd buffer (*len bytes, the caller frees). NULL with err:
 * ConfigError "PATH: cannot open: …", "PATH: larger than N MiB" (more than max bytes),
 * "PATH: read error"; OutOfMemory. */
char *textfile_read(const char *path, size_t max, size_t *len, struct err *err);

#endif
