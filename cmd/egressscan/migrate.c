/* migrate.c - `egressscan migrate`: applies the embedded schema migrations (idempotent). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/egressscan/commands.h"
#include "storage/db.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: egressscan migrate [--database-url URL]\n\n"
                 "Applies pending schema migrations (embedded in the binary) under an advisory\n"
                 "lock; running it again does nothing. Database: --database-url, DATABASE_URL,\n"
                 "else libpq's PG* variables and .pgpass.\n");
}

int cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {{"database-url", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *url = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            url = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "egressscan migrate: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    struct err e;
    err_clear(&e);
    struct db *db = db_connect(url, &e);
    if (!db) {
        fprintf(stderr, "egressscan migrate: cannot connect to the database: %s\n", e.message);
        return EXIT_FAILED;
    }
    int applied = 0;
    int rc = db_migrate(db, &applied, &e);
    db_close(db);
    if (rc < 0) {
        fprintf(stderr, "egressscan migrate: %s (%s)\n", e.message, e.code);
        return EXIT_FAILED;
    }
    printf("migrate: %d migration%s applied; schema is current\n", applied,
           applied == 1 ? "" : "s");
    return EXIT_OK;
}
