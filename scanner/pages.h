/* pages.h - the guard of a paginated listing: how many pages it has read, and a hash of every
 * nextToken it was given, so that a token given twice (a listing that would never end, A B A B
 * as much as A A) is refused whatever the page cap. */
#ifndef EGRESSSCAN_PAGES_H
#define EGRESSSCAN_PAGES_H

#include <stddef.h>

#include "common/err.h"

struct page_tokens {
    unsigned long long *seen; /* a hash of each nextToken so far, in page order */
    size_t pages;             /* pages read */
};

enum page_next { PAGES_END = 0, PAGES_MORE = 1, PAGES_CAPPED = 2 };

/* One more page read, whose answer gave next_token (NULL or "": the last page). PAGES_END: the
 * listing is complete; PAGES_MORE: ask for next_token; PAGES_CAPPED: it would go past max_pages
 * (the caller says why that is a failure); -1 with err set (ERR_PARSE, naming api) when an earlier
 * page gave the same token, or out of memory. */
int page_tokens_next(struct page_tokens *pt, const char *api, const char *next_token,
                     size_t max_pages, struct err *err);

void page_tokens_free(struct page_tokens *pt);

#endif
