/* test_pg_harness.c - the throwaway PostgreSQL helper: starts a real server on a free loopback
 * port, answers queries, and is gone (process and directory) after pgtest_stop. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "tests/support/procs.h"

static void test_start_query_stop(void **state)
{
    (void)state;
    struct pgtest pg;
    assert_int_equal(pgtest_start(&pg), 0);
    assert_true(pg.port > 0);
    assert_true(pg.pid > 0);

    PGconn *c = PQconnectdb(pg.url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    const char *params[1] = {"41"};
    PGresult *r = PQexecParams(c, "SELECT $1::int + 1, inet_server_addr()::text", 1, NULL, params,
                               NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "42");
    assert_string_equal(PQgetvalue(r, 0, 1), "127.0.0.1/32");
    PQclear(r);
    PQfinish(c);

    pid_t pid = pg.pid;
    char dir[256];
    snprintf(dir, sizeof dir, "%s", pg.dir);
    pgtest_stop(&pg);
    assert_int_equal(kill(pid, 0), -1); /* the postmaster is gone */
    struct stat st;
    assert_int_equal(stat(dir, &st), -1); /* and so is its directory */
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_start_query_stop)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
