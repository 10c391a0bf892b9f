/* fuzz_config.c - libFuzzer target for the scan configuration file: arbitrary bytes loaded on top
 * of a configuration that already holds values (as flags would have set them). A failure is a
 * ConfigError whose message starts with the file name; a success passes config_validate.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scan_config c;
    config_init(&c);
    check(str_list_split(&c.regions, "eu-west-1, us-east-1") == 0);
    c.role_name = strdup("EgressScanRole");
    check(c.role_name != NULL);
    struct err e;
    err_clear(&e);
    if (config_load_string(&c, (const char *)data, size, "fuzz.json", &e) < 0) {
        check(strcmp(e.code, ERR_CONFIG) == 0 || strcmp(e.code, ERR_NOMEM) == 0);
        check(strncmp(e.message, "fuzz.json:", 10) == 0 || strcmp(e.code, ERR_NOMEM) == 0);
    } else {
        struct err v;
        err_clear(&v);
        check(config_validate(&c, &v) == 0);
        for (size_t i = 0; i < c.regions.n; i++)
            check(c.regions.items[i] && c.regions.items[i][0] != '\0');
    }
    config_cleanup(&c);
    return 0;
}
