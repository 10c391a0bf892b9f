/* fuzz_eks.c - libFuzzer target for the EKS restJson1 answer parsers: arbitrary bytes as both a
 * ListClusters and a DescribeCluster answer. What comes out is what the database stores, so it
 * must be whole: names and strings without NULs, JSON fields that parse back to their type, the
 * raw body verbatim; a failure is a MalformedResponse error with a message and no result.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "scanner/eks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void check_error(const struct err *e)
{
    check(strcmp(e->code, ERR_PARSE) == 0 || strcmp(e->code, ERR_NOMEM) == 0);
    check(e->message[0] != '\0');
}

/* A JSON text field: absent, or text that parses back as a value of type want. */
static void check_json_field(const char *text, json_type want)
{
    if (!text)
        return;
    json_t *v = json_loads(text, 0, NULL); /* new */
    check(v != NULL && json_typeof(v) == want);
    json_decref(v);
}

static void fuzz_list(const char *body, size_t len)
{
    struct err e;
    err_clear(&e);
    char **names = NULL, *token = NULL;
    size_t n = 0;
    if (eks_parse_list_clusters(body, len, &names, &n, &token, &e) < 0) {
        check(names == NULL && n == 0 && token == NULL);
        check_error(&e);
        return;
    }
    check(names != NULL && names[n] == NULL);
    for (size_t i = 0; i < n; i++)
        check(names[i] != NULL);
    check(token == NULL || token[0] != '\0'); /* an empty token would page forever */
    free(names);
}

static void fuzz_describe(const char *body, size_t len)
{
    struct err e;
    err_clear(&e);
    struct cluster *c = eks_parse_describe_cluster(body, len, &e);
    if (!c) {
        check_error(&e);
        return;
    }
    check(c->name && c->name[0] != '\0');
    check(c->raw_json && strlen(c->raw_json) == len && memcmp(c->raw_json, body, len) == 0);
    check(c->endpoint_public_access >= -1 && c->endpoint_public_access <= 1);
    check(c->endpoint_private_access >= -1 && c->endpoint_private_access <= 1);
    check_json_field(c->tags_json, JSON_OBJECT);
    check_json_field(c->public_access_cidrs_json, JSON_ARRAY);
    free(c);
}

static void fuzz_updates(const char *body, size_t len)
{
    struct err e;
    err_clear(&e);
    char **ids = NULL, *token = NULL;
    size_t n = 0;
    if (eks_parse_list_updates(body, len, &ids, &n, &token, &e) < 0) {
        check(ids == NULL && n == 0 && token == NULL);
        check_error(&e);
    } else {
        for (size_t i = 0; i < n; i++)
            check(eks_update_id_valid(ids[i], strlen(ids[i])));
        check(ids[n] == NULL && (token == NULL || token[0] != '\0'));
        free(ids);
    }
    struct eks_update u;
    err_clear(&e);
    if (eks_parse_describe_update(body, len, NULL, &u, &e) < 0) {
        check(u.id[0] == '\0');
        check_error(&e);
        return;
    }
    check(eks_update_id_valid(u.id, strlen(u.id)) && u.status[0] && u.type[0]);
    check(utf8_valid(u.egress_mode, strlen(u.egress_mode)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_list((const char *)data, size);
    fuzz_describe((const char *)data, size);
    fuzz_updates((const char *)data, size);
    return 0;
}
