/* pages.c - see pages.h. */
#include "scanner/pages.h"

#include <stdlib.h>

/* FNV-1a, 64 bits: two distinct tokens of one listing colliding is not a practical concern. */
static unsigned long long token_hash(const char *s)
{
    unsigned long long h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int page_tokens_next(struct page_tokens *pt, const char *api, const char *next_token,
                     size_t max_pages, struct err *err)
{
    pt->pages++;
    if (!next_token || !next_token[0])
        return PAGES_END;
    if (pt->pages >= max_pages)
        return PAGES_CAPPED;
    unsigned long long h = token_hash(next_token);
    for (size_t i = 0; i + 1 < pt->pages; i++)
        if (pt->seen[i] == h)
            return err_set(err, ERR_PARSE,
                           "%s: page %zu repeats the nextToken of page %zu (the listing would "
                           "never end)",
                           api, pt->pages, i + 1);
    unsigned long long *seen = realloc(pt->seen, pt->pages * sizeof *seen);
    if (!seen)
        return err_set(err, ERR_NOMEM, "%s: out of memory", api);
    pt->seen = seen;
    pt->seen[pt->pages - 1] = h;
    return PAGES_MORE;
}

void page_tokens_free(struct page_tokens *pt)
{
    free(pt->seen);
    pt->seen = NULL;
    pt->pages = 0;
}
