/* config.h - the scan configuration: the JSON config file of SPEC.md section 3, with flags
 * applied on top by cmd/. Every key mirrors a flag. Errors name file, line and column. */
#ifndef EGRESSSCAN_CONFIG_H
#define EGRESSSCAN_CONFIG_H

#include <stddef.h>

#include "common/err.h"

struct str_list {
    char **items;
    size_t n;
};

struct scan_config {
    struct str_list accounts; /* empty: Organizations */
    struct str_list exclude_accounts;
    char *ou;
    struct str_list regions; /* empty: "all" */
    char *role_name;
    char *external_id;
    char *org_role_arn;
    int concurrency; /* 0: default */
    char *policy;
    char *database_url;
    char *metrics_file;
    char *log_format;
    char *log_level;
    char *fail_on; /* critical, high, medium, low or info: exit 1 on a finding that severe */
    int no_progress;
    int page_size; /* hidden: ListClusters page size (tests) */
};

void config_init(struct scan_config *c);
void config_cleanup(struct scan_config *c);

/* Reads a config file into c (keys present override c's values). Unknown keys, wrong types and
 * invalid values are errors (code ConfigError) whose message starts "FILE:LINE:COLUMN: ". */
int config_load_file(struct scan_config *c, const char *path, struct err *err);

/* Same from a string (tests, fuzzing); name stands for the file name in messages. */
int config_load_string(struct scan_config *c, const char *text, size_t len, const char *name,
                       struct err *err);

/* Replaces *dst (freed) with a copy of v. -1 when out of memory (*dst unchanged). */
int config_set_string(char **dst, const char *v);

/* A decimal integer from min to max (a flag's or an environment variable's value): the whole of
 * s, no sign tricks past strtol's. 0 with *out set, or -1 (*out unchanged). */
int config_parse_long(const char *s, long min, long max, long *out);

/* Splits "a,b,c" into list (appending; empty items and items the list holds already skipped:
 * every list of the configuration is free of duplicates). -1 on ENOMEM. */
int str_list_split(struct str_list *list, const char *csv);
void str_list_free(struct str_list *list);

/* Checks values that do not depend on the source: account ids are 12 digits, concurrency in
 * 1..4096, log format/level known, fail_on a severity. */
int config_validate(const struct scan_config *c, struct err *err);

#endif
