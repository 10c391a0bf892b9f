/* config.c - loading the JSON config file (jansson) into struct scan_config, with errors that
 * point at file:line:column, and the checks shared with command-line flags. */
#include "common/config.h"
#include "common/model.h"
#include "common/report_model.h"
#include "common/textfile.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_init(struct scan_config *c)
{
    memset(c, 0, sizeof *c);
}

void str_list_free(struct str_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

void config_cleanup(struct scan_config *c)
{
    str_list_free(&c->accounts);
    str_list_free(&c->exclude_accounts);
    str_list_free(&c->regions);
    free(c->ou);
    free(c->role_name);
    free(c->external_id);
    free(c->org_role_arn);
    free(c->policy);
    free(c->database_url);
    free(c->metrics_file);
    free(c->log_format);
    free(c->log_level);
    free(c->fail_on);
    config_init(c);
}

/* Appends s[0..len) unless the list holds it already: a region or account named twice (in a
 * flag, the config file or a scan's stored options) is one target, scanned once. */
static int str_list_add(struct str_list *list, const char *s, size_t len)
{
    for (size_t i = 0; i < list->n; i++)
        if (strncmp(list->items[i], s, len) == 0 && list->items[i][len] == '\0')
            return 0;
    char **items = realloc(list->items, (list->n + 1) * sizeof *items);
    if (!items)
        return -1;
    list->items = items;
    char *copy = strndup(s, len);
    if (!copy)
        return -1;
    list->items[list->n++] = copy;
    return 0;
}

int str_list_split(struct str_list *list, const char *csv)
{
    const char *p = csv;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        size_t l = len;
        while (l && isspace((unsigned char)p[l - 1]))
            l--;
        if (l && str_list_add(list, p, l) < 0)
            return -1;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Where a value sits in the file: jansson records positions only for parse errors, so values
 * are located by searching for their key's first occurrence in the text. Good enough to point a
 * human at the right line. */
struct loc {
    const char *text;
    size_t len;
    const char *name;
};

static void position_of_key(const struct loc *l, const char *key, int *line, int *col)
{
    *line = 1;
    *col = 1;
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen + 2 <= l->len; i++) {
        if (l->text[i] == '"' && memcmp(l->text + i + 1, key, klen) == 0 &&
            l->text[i + 1 + klen] == '"') {
            int ln = 1, cl = 1;
            for (size_t j = 0; j < i; j++) {
                if (l->text[j] == '\n') {
                    ln++;
                    cl = 1;
                } else {
                    cl++;
                }
            }
            *line = ln;
            *col = cl;
            return;
        }
    }
}

static int key_error(const struct loc *l, const char *key, struct err *err, const char *what)
{
    int line, col;
    position_of_key(l, key, &line, &col);
    return err_set(err, ERR_CONFIG, "%s:%d:%d: \"%s\": %s", l->name, line, col, key, what);
}

static int set_string(char **dst, json_t *v, const struct loc *l, const char *key, struct err *err)
{
    if (!json_is_string(v))
        return key_error(l, key, err, "must be a string");
    char *s = strdup(json_string_value(v));
    if (!s)
        return err_set(err, ERR_NOMEM, "out of memory");
    free(*dst);
    *dst = s;
    return 0;
}

/* A list key accepts an array of strings or one comma-separated string. */
static int set_list(struct str_list *dst, json_t *v, const struct loc *l, const char *key,
                    struct err *err)
{
    struct str_list tmp = {0};
    if (json_is_string(v)) {
        if (str_list_split(&tmp, json_string_value(v)) < 0)
            goto nomem;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item)) {
                str_list_free(&tmp);
                return key_error(l, key, err, "must be an array of strings");
            }
            if (json_string_length(item) == 0) {
                str_list_free(&tmp);
                return key_error(l, key, err, "must not hold an empty string");
            }
            if (str_list_add(&tmp, json_string_value(item), json_string_length(item)) < 0)
                goto nomem;
        }
    } else {
        return key_error(l, key, err, "must be an array of strings or a comma-separated string");
    }
    str_list_free(dst);
    *dst = tmp;
    return 0;
nomem:
    str_list_free(&tmp);
    return err_set(err, ERR_NOMEM, "out of memory");
}

static int set_int(int *dst, json_t *v, const struct loc *l, const char *key, long min, long max,
                   struct err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char what[96];
        snprintf(what, sizeof what, "must be an integer from %ld to %ld", min, max);
        return key_error(l, key, err, what);
    }
    *dst = (int)json_integer_value(v);
    return 0;
}

int config_load_string(struct scan_config *c, const char *text, size_t len, const char *name,
                       struct err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return err_set(err, ERR_CONFIG, "%s:%d:%d: %s", name, je.line, je.column, je.text);
    struct loc l = {text, len, name};
    int rc = -1;
    if (!json_is_object(root)) {
        err_set(err, ERR_CONFIG, "%s:1:1: the configuration must be a JSON object", name);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int r;
        if (strcmp(key, "accounts") == 0)
            r = set_list(&c->accounts, v, &l, key, err);
        else if (strcmp(key, "exclude_accounts") == 0)
            r = set_list(&c->exclude_accounts, v, &l, key, err);
        else if (strcmp(key, "regions") == 0) {
            if (json_is_string(v) && strcmp(json_string_value(v), "all") == 0) {
                str_list_free(&c->regions);
                r = 0;
            } else {
                r = set_list(&c->regions, v, &l, key, err);
            }
        } else if (strcmp(key, "ou") == 0)
            r = set_string(&c->ou, v, &l, key, err);
        else if (strcmp(key, "role_name") == 0)
            r = set_string(&c->role_name, v, &l, key, err);
        else if (strcmp(key, "external_id") == 0)
            r = set_string(&c->external_id, v, &l, key, err);
        else if (strcmp(key, "org_role_arn") == 0)
            r = set_string(&c->org_role_arn, v, &l, key, err);
        else if (strcmp(key, "policy") == 0)
            r = set_string(&c->policy, v, &l, key, err);
        else if (strcmp(key, "database_url") == 0)
            r = set_string(&c->database_url, v, &l, key, err);
        else if (strcmp(key, "metrics_file") == 0)
            r = set_string(&c->metrics_file, v, &l, key, err);
        else if (strcmp(key, "log_format") == 0)
            r = set_string(&c->log_format, v, &l, key, err);
        else if (strcmp(key, "log_level") == 0)
            r = set_string(&c->log_level, v, &l, key, err);
        else if (strcmp(key, "fail_on") == 0)
            r = set_string(&c->fail_on, v, &l, key, err);
        else if (strcmp(key, "concurrency") == 0)
            r = set_int(&c->concurrency, v, &l, key, 1, 4096, err);
        else if (strcmp(key, "page_size") == 0)
            r = set_int(&c->page_size, v, &l, key, 1, 100, err);
        else if (strcmp(key, "no_progress") == 0) {
            if (!json_is_boolean(v))
                r = key_error(&l, key, err, "must be true or false");
            else {
                c->no_progress = json_is_true(v);
                r = 0;
            }
        } else
            r = key_error(&l, key, err, "unknown key");
        if (r < 0)
            goto done;
    }
    rc = config_validate(c, err);
    if (rc < 0)
        err_prefix(err, "%s: ", name);
done:
    json_decref(root);
    return rc;
}

int config_load_file(struct scan_config *c, const char *path, struct err *err)
{
    size_t len = 0;
    char *text = textfile_read(path, (size_t)16 << 20, &len, err);
    if (!text)
        return -1;
    int rc = config_load_string(c, text, len, path, err);
    free(text);
    return rc;
}

int config_validate(const struct scan_config *c, struct err *err)
{
    for (size_t i = 0; i < c->accounts.n; i++)
        if (!account_id_valid(c->accounts.items[i]))
            return err_set(err, ERR_CONFIG, "account id \"%s\" is not 12 digits",
                           c->accounts.items[i]);
    for (size_t i = 0; i < c->exclude_accounts.n; i++)
        if (!account_id_valid(c->exclude_accounts.items[i]))
            return err_set(err, ERR_CONFIG, "excluded account id \"%s\" is not 12 digits",
                           c->exclude_accounts.items[i]);
    if (c->concurrency < 0 || c->concurrency > 4096)
        return err_set(err, ERR_CONFIG, "concurrency must be from 1 to 4096");
    if (c->log_format && strcmp(c->log_format, "text") != 0 && strcmp(c->log_format, "json") != 0)
        return err_set(err, ERR_CONFIG, "log format must be text or json");
    if (c->log_level && strcmp(c->log_level, "debug") != 0 && strcmp(c->log_level, "info") != 0 &&
        strcmp(c->log_level, "warn") != 0 && strcmp(c->log_level, "error") != 0)
        return err_set(err, ERR_CONFIG, "log level must be debug, info, warn or error");
    if (c->fail_on && report_severity_of(c->fail_on) == REPORT_SEVERITIES)
        return err_set(err, ERR_CONFIG,
                       "fail_on \"%s\" is not a severity (critical, high, medium, low, info)",
                       c->fail_on);
    if (c->role_name && (!c->role_name[0] || strchr(c->role_name, ':')))
        return err_set(err, ERR_CONFIG, "role name \"%s\" is not a role name", c->role_name);
    if (c->role_name) {
        /* IAM: a name of at most 64 characters, after a path of at most 512 (the role's ARN is
         * built from it: never cut short) */
        const char *slash = strrchr(c->role_name, '/');
        size_t name = strlen(slash ? slash + 1 : c->role_name);
        size_t path = slash ? (size_t)(slash - c->role_name) + 1 : 0;
        if (name == 0 || name > 64 || path > 512)
            return err_set(err, ERR_CONFIG,
                           "role name of %zu characters with a path of %zu: IAM allows 1 to 64 "
                           "and a path of at most 512",
                           name, path);
    }
    return 0;
}

int config_set_string(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

int config_parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}
