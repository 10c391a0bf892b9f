/* scp_eval_driver.c - drives egressscan's SCP evaluator in-process for the differential test
 * (tests/oracle/scp_diff.js): one SCP hierarchy and its requests per line of standard input, one
 * line of verdicts per hierarchy on standard output. Test-only; no database, no network.
 *
 * In:  {"account":"111122223333","partition":"aws",
 *       "levels":[{"target":"r-ab12","docs":[{"id":"p-1","content":"{...policy...}"}]}, ...],
 *       "requests":[{"action":"eks:CreateCluster","region":"eu-west-1",
 *                    "mode":"AWS_MANAGED"|null (omitted),"principal":"arn:..."|null (any)}]}
 * Out: {"verdicts":[{"verdict":"denied","reason":"...","allowed_principal":"...",
 *                    "denied_principal":"..."}, ...]}
 * A line it cannot read gets {"error":"..."} (and exit status 1 at the end). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/model.h"
#include "intent/scp.h"

#define MAX_DOCS 64

static json_t *evaluate_line(json_t *in, const char **error)
{
    const char *account = json_string_value(json_object_get(in, "account"));
    const char *partition = json_string_value(json_object_get(in, "partition"));
    json_t *jlevels = json_object_get(in, "levels");
    json_t *jreqs = json_object_get(in, "requests");
    size_t n_levels = json_array_size(jlevels);
    if (!account || n_levels == 0 || n_levels > SCP_MAX_LEVELS || !json_is_array(jreqs)) {
        *error = "account, levels (1-8) and requests are required";
        return NULL;
    }
    struct scp_doc *docs[MAX_DOCS];
    const struct scp_doc *level_docs[SCP_MAX_LEVELS][MAX_DOCS];
    struct scp_level levels[SCP_MAX_LEVELS];
    size_t n_docs = 0;
    json_t *out = NULL;
    for (size_t i = 0; i < n_levels; i++) {
        json_t *lv = json_array_get(jlevels, i);
        json_t *jd = json_object_get(lv, "docs");
        levels[i] =
            (struct scp_level){.target_id = json_string_value(json_object_get(lv, "target")),
                               .docs = level_docs[i],
                               .n_docs = 0};
        for (size_t k = 0; k < json_array_size(jd); k++) {
            const char *id = json_string_value(json_object_get(json_array_get(jd, k), "id"));
            const char *content =
                json_string_value(json_object_get(json_array_get(jd, k), "content"));
            if (!id || !content || n_docs == MAX_DOCS) {
                *error = "a document needs an id and a content (at most 64 documents)";
                goto out;
            }
            docs[n_docs] = scp_doc_parse(id, content, strlen(content));
            if (!docs[n_docs]) {
                *error = "out of memory";
                goto out;
            }
            level_docs[i][levels[i].n_docs++] = docs[n_docs++];
        }
    }
    out = json_array();
    for (size_t r = 0; r < json_array_size(jreqs); r++) {
        json_t *jr = json_array_get(jreqs, r);
        const char *mode = json_string_value(json_object_get(jr, "mode"));
        int m = mode ? egress_mode_parse(mode) : EGRESS_OMITTED;
        if (m < 0 || (mode && m == EGRESS_OMITTED)) {
            *error = "unknown mode";
            json_decref(out);
            out = NULL;
            goto out;
        }
        struct scp_request req = {
            .action = json_string_value(json_object_get(jr, "action")),
            .account_id = account,
            .region = json_string_value(json_object_get(jr, "region")),
            .mode = (enum egress_mode)m,
            .principal_arn = json_string_value(json_object_get(jr, "principal")),
        };
        struct scp_decision d;
        scp_evaluate(levels, n_levels, &req, partition, &d);
        json_t *v =
            json_pack("{s:s, s:s}", "verdict", scp_verdict_name(d.verdict), "reason", d.reason);
        if (v && d.allowed_principal[0])
            json_object_set_new(v, "allowed_principal", json_string(d.allowed_principal));
        if (v && d.denied_principal[0])
            json_object_set_new(v, "denied_principal", json_string(d.denied_principal));
        json_array_append_new(out, v ? v : json_null());
    }
out:
    for (size_t i = 0; i < n_docs; i++)
        scp_doc_free(docs[i]);
    return out;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        json_error_t jerr;
        json_t *in = json_loadb(line, (size_t)len, 0, &jerr);
        const char *error = in ? NULL : jerr.text;
        json_t *verdicts = in ? evaluate_line(in, &error) : NULL;
        json_t *doc = verdicts ? json_pack("{s:o}", "verdicts", verdicts)
                               : json_pack("{s:s}", "error", error ? error : "unreadable line");
        if (!verdicts)
            status = 1;
        char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (!text) {
            fprintf(stderr, "scp_eval_driver: out of memory\n");
            return 1;
        }
        puts(text);
        free(text);
        json_decref(doc);
        json_decref(in);
    }
    free(line);
    fflush(stdout);
    return status;
}
