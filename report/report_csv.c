/* report_csv.c - the week's findings table as CSV (RFC 4180: CRLF line ends, a field quoted when
 * it holds a comma, a quote, CR or LF, quotes doubled): every finding open at the end of the week,
 * first seen in it, or resolved in it, in the order of the report (first_seen, finding_id). A week
 * without findings is the header alone. A cell starting with = + - @, tab or CR (an account may
 * name itself so) gets a leading ' and quotes (quote_csv_cell), so no spreadsheet runs it. */
#include <stdio.h>
#include <string.h>

#include "common/quote.h"
#include "report/report.h"
#include "report/report_internal.h"

/* Every cell through quote_csv_cell: RFC 4180, and no cell a spreadsheet runs as a formula. */
static void field(FILE *out, const char *s, int last)
{
    quote_csv_cell_write(out, s);
    fputs(last ? "\r\n" : ",", out);
}

static const char *const columns[] = {"finding_id",    "status_at_week_end",
                                      "new_this_week", "resolved_this_week",
                                      "kind",          "severity",
                                      "account_id",    "account_name",
                                      "ou_path",       "region",
                                      "cluster_name",  "cluster_arn",
                                      "observed_mode", "allowed_modes",
                                      "source",        "reason",
                                      "why",           "first_seen",
                                      "resolved_at",   "resolved_reason",
                                      "carried_over",  "open_days",
                                      "remediation",   "warning"};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

int report_render_csv(const struct report *r, FILE *out, struct err *err)
{
    for (size_t c = 0; c < N_COLUMNS; c++)
        field(out, columns[c], c + 1 == N_COLUMNS);
    for (size_t i = 0; i < r->n_findings; i++) {
        const struct report_finding *f = &r->findings[i];
        char id[32], age[32] = "";
        snprintf(id, sizeof id, "%lld", f->finding_id);
        long days = f->open_at_end ? report_age_days(r, f->first_seen) : -1;
        if (days >= 0)
            snprintf(age, sizeof age, "%ld", days);
        const char *row[N_COLUMNS] = {id,
                                      f->open_at_end          ? "open"
                                      : f->resolved_this_week ? "resolved"
                                                              : "not_rechecked",
                                      f->new_this_week ? "true" : "false",
                                      f->resolved_this_week ? "true" : "false",
                                      f->kind,
                                      f->severity,
                                      f->account_id,
                                      f->account_name,
                                      f->ou_path,
                                      f->region,
                                      f->cluster_name,
                                      f->cluster_arn,
                                      f->observed_mode,
                                      f->allowed_modes,
                                      f->source,
                                      f->reason,
                                      f->why,
                                      f->first_seen,
                                      f->resolved_at,
                                      f->resolved_reason,
                                      f->carried_over ? "true" : "false",
                                      age,
                                      f->remediation,
                                      f->warning};
        for (size_t c = 0; c < N_COLUMNS; c++)
            field(out, row[c], c + 1 == N_COLUMNS);
    }
    if (fflush(out) != 0 || ferror(out))
        return err_set(err, ERR_IO, "writing the CSV report failed");
    return 0;
}
