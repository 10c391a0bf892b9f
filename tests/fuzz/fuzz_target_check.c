/* fuzz_target_check.c - libFuzzer target for the writer's input validation (db_target_check):
 * a target result built from arbitrary bytes (fields separated by 0x1f, an empty optional field
 * is NULL, up to 3 clusters). Whatever it accepts as an ok target, the database can store and
 * attributes rightly: each cluster's name follows AWS's rules, its ARN names the target's
 * account, region and that name, and every text field is valid UTF-8. A refusal is InvalidInput
 * or MalformedResponse with a valid UTF-8 message. Built and run by `make fuzz`. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/model.h"
#include "common/utf8.h"
#include "storage/target_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELDS 38 /* 5 for the target, 11 per cluster */

static void check(int ok)
{
    if (!ok)
        abort();
}

static int text_ok(const char *s)
{
    return !s || utf8_valid(s, strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *f[FIELDS] = {0};
    size_t nf = 0;
    char *p = copy;
    while (nf < FIELDS) {
        f[nf++] = p;
        char *sep = memchr(p, 0x1f, (size_t)(copy + size - p));
        if (!sep)
            break;
        *sep = '\0';
        p = sep + 1;
    }
    for (size_t i = 2; i < nf; i++)
        if (f[i] && !f[i][0])
            f[i] = NULL; /* empty optional field: absent */
    struct cluster cl[3];
    memset(cl, 0, sizeof cl);
    size_t n_clusters = nf > 5 ? (nf - 5 + 10) / 11 : 0;
    for (size_t k = 0; k < n_clusters; k++) {
        char **c = f + 5 + 11 * k;
        cl[k] = (struct cluster){.name = c[0],
                                 .arn = c[1],
                                 .egress_mode = c[2],
                                 .status = c[3],
                                 .kubernetes_version = c[4],
                                 .platform_version = c[5],
                                 .public_access_cidrs_json = c[6],
                                 .vpc_id = c[7],
                                 .tags_json = c[8],
                                 .created_at = c[9],
                                 .raw_json = c[10],
                                 .endpoint_public_access = -1,
                                 .endpoint_private_access = -1};
    }
    struct target_result t = {.account_id = f[0],
                              .region = nf > 1 ? f[1] : NULL,
                              .status = nf > 2 && f[2] && f[2][0] >= '0' && f[2][0] <= '9'
                                            ? (enum target_status)(f[2][0] - '0')
                                            : TARGET_OK,
                              .error_code = nf > 3 ? f[3] : NULL,
                              .error_message = nf > 4 ? f[4] : NULL,
                              .clusters = cl,
                              .n_clusters = n_clusters,
                              .scanned_at = 1767225600.0};
    struct err e;
    err_clear(&e);
    if (db_target_check(&t, &e) < 0) {
        check(strcmp(e.code, ERR_INVALID) == 0 || strcmp(e.code, ERR_PARSE) == 0);
        check(utf8_valid(e.message, strlen(e.message)));
    } else {
        check(account_id_valid(t.account_id));
        check(text_ok(t.error_code) && text_ok(t.error_message));
        for (size_t k = 0; t.status == TARGET_OK && k < n_clusters; k++) {
            const struct cluster *c = &cl[k];
            check(c->name && c->arn && cluster_name_valid(c->name, strlen(c->name)));
            size_t al = strlen(c->arn), nl = strlen(c->name), il = strlen(t.account_id);
            check(al > nl + il + 9 && strcmp(c->arn + al - nl, c->name) == 0);
            check(strncmp(c->arn + al - nl - il - 10, ":", 1) == 0);
            check(strncmp(c->arn + al - nl - il - 9, t.account_id, il) == 0);
            check(strncmp(c->arn, "arn:", 4) == 0);
            check(text_ok(c->egress_mode) && text_ok(c->status) && text_ok(c->tags_json) &&
                  text_ok(c->raw_json) && text_ok(c->created_at) && text_ok(c->vpc_id));
        }
    }
    free(copy);
    return 0;
}
