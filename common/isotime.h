/* isotime.h - ISO 8601 timestamps as AWS sends them. */
#ifndef EGRESSSCAN_ISOTIME_H
#define EGRESSSCAN_ISOTIME_H

#include <time.h>

/* "2026-11-26T15:30:00Z", with optional fractional seconds (dropped) and a Z or +-hh:mm offset,
 * to UTC seconds. 0, or -1 when s is not such a timestamp. */
int iso8601_parse(const char *s, time_t *out);

#endif
